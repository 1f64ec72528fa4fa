#!/usr/bin/env bash
# cap: 280
# cap-debug: 850
# vm-suite: debug
# The kernel's netkit NIC selftests (tools/testing/selftests/drivers/net/
# hw/nk_devmem.py, hw/userns_devmem.py, hw/nk_qlease.py) on dmveth, issue
# 12: NETIF is one end in this netns, the remote end in netns "a"
# (REMOTE_TYPE=netns), as in 49-nic-selftests.t.  The selftests put a netkit
# pair in a namespace of their own (a user namespace for userns_devmem.py)
# and forward between it and NETIF with tc BPF programs (nk_forward.bpf.o,
# nk_primary_rx_redirect.bpf.o, built with the selftests).  They need an
# iproute2 that knows netkit and loads BPF objects with global data, and
# bpftool: bookworm has neither, so vm/build builds both from source into
# the cache; they go first in PATH here, with the cache's ethtool.
# Each case is a result line of ours, as tests/lib/ksft.sh says.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/ksft.sh"
HW=$KSFT_NET/hw
# (the BPF objects come with the selftests' build, which needs clang)
ksft_need hw/nk_devmem.py hw/userns_devmem.py hw/nk_qlease.py hw/nk_forward.bpf.o \
	hw/nk_primary_rx_redirect.bpf.o
C=$(dirname "$DEVMEMTCP_TOOLS")
ETH=$(ls -d "$C"/ethtool-*/usr/sbin 2>/dev/null | sort -V | tail -n 1)
IPR=$(dirname "$(ls "$C"/iproute2-*/bin/ip 2>/dev/null | sort -V | tail -n 1)")
BPFTOOL=$(dirname "$(ls "$C"/bpftool-*/bpftool 2>/dev/null | sort -V | tail -n 1)")
[ -n "$ETH" ] || ktap_bail "a current ethtool in the cache (fix: vm/build)"
[ -x "$IPR/ip" ] && "$IPR/ip" link help netkit 2>&1 | grep -q netkit ||
	ktap_bail "an iproute2 that knows netkit in the cache ($(ip -V); fix: vm/build)"
[ -x "$BPFTOOL/bpftool" ] || ktap_bail "bpftool in the cache (fix: vm/build)"
export PATH=$IPR:$BPFTOOL:$ETH:$PATH

# case -> a text its SKIP reason must contain
declare -A ALLOW_SKIP=()

KSFT_LOG=$(mktemp -d)
trap 'ksft_unpair; rm -rf "$KSFT_LOG"' EXIT
ksft_pair
ktap_ok "dmveth pair, $DMV_B here and $DMV_A in netns a; $(ip -V), $(bpftool version | head -n 1)"
# the netkit side's prefix (outside LOCAL_V6's /64), which the remote end
# reaches through NETIF: the selftests' set-up adds a /128 route on the
# remote only with primary_rx_redirect (nk_devmem, userns_devmem), and
# nk_qlease's iou-zcrx client connects to the netkit address without it
export LOCAL_PREFIX_V6=fd56::/64
ip -n a -6 route add $LOCAL_PREFIX_V6 via $DMV_B6 dev $DMV_A ||
	ktap_bail "route $LOCAL_PREFIX_V6 via $DMV_B6 in netns a"

# On the debug kernel only nk_devmem.py (about 520 s there under TCG, with
# the framework's waits x10; issue 12 names it for that kernel): make
# check's 45 minutes leave no room for the other two there.
SCALE=3 LIMIT=600 NK=${NK_SELFTESTS:-nk_devmem userns_devmem nk_qlease}
if [ "${DEVMEMTCP_FLAVOR:-normal}" = debug ]; then
	SCALE=10 LIMIT=800 NK=${NK_SELFTESTS:-nk_devmem}
fi
ksft_hugepages 128
for t in $NK; do
	ksft_run "$HW" "$t" $LIMIT $SCALE
done
ksft_hugepages_report
ktap_done
