#!/usr/bin/env bash
# cap: 30
# Rig smoke tests in the guest: a kernel new enough for devmem TX, udmabuf
# from a sealed memfd with DMA_BUF_IOCTL_SYNC, the netdev genl family with
# bind-rx and bind-tx, our uapi numbers against the rig's own headers.
set -o pipefail
TOP=$(cd "$(dirname "$0")/../.." && pwd)
. "$TOP/tests/lib/ktap.sh"
rel=$(uname -r)
if [ "$(printf '6.16\n%s\n' "${rel%%-*}" | sort -V | head -n 1)" = 6.16 ]; then
	ktap_ok "guest kernel $rel >= 6.16"
else
	ktap_fail "guest kernel $rel >= 6.16"
fi
[ "$rel" = "${KERNEL_RELEASE:-}" ] && ktap_ok "guest runs the built release ($rel)" ||
	ktap_fail "guest runs the built release ($rel, built ${KERNEL_RELEASE:-?})"
[ -c /dev/udmabuf ] && ktap_ok "/dev/udmabuf present" || ktap_fail "/dev/udmabuf present"
[ -c /dev/dma_heap/system ] && ktap_ok "/dev/dma_heap/system present" || ktap_fail "/dev/dma_heap/system present"
# The programs print their own KTAP lines: ours, numbered on; a program's
# crash, timeout or non-zero exit is a failure naming it.
for p in udmabuf-smoke netdev-family uapi-consts-rig; do
	if [ ! -x "$BUILD/tests/$p" ]; then
		ktap_fail "$p built (make all rig-progs)"
		continue
	fi
	ktap_relay "$p" "$BUILD/tests/$p"
done
ktap_done
