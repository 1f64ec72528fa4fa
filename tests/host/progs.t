#!/usr/bin/env bash
# cap: 30
# cap-asan: 30
# asan: yes
# Host-side runs of the C test programs that need no VM: our uapi numbers
# against the rig kernel's own installed headers (uapi-consts-rig, built by
# `make rig-progs`, which `make check` runs) and against this system's
# headers, and the host kernel's netdev genl family.  Each program's result
# lines are ours; a program that exits non-zero, crashes or prints no result
# is a failure naming it.
set -o pipefail
. "$(dirname "$0")/../lib/ktap.sh"
for p in uapi-consts-rig uapi-consts netdev-family udmabuf-smoke lib-dmabuf lib-netlink rx-engine nic-setup; do
	if [ ! -x "$BUILD/tests/$p" ]; then
		if [ $p = uapi-consts-rig ]; then
			ktap_fail "$p built (make rig-progs; needs the rig's headers: vm/build)"
		else
			ktap_fail "$p built (make all)"
		fi
		continue
	fi
	ktap_relay "$p (host)" "$BUILD/tests/$p"
done

# MSG_SOCK_DEVMEM is kernel-internal (no UAPI header has it): our number
# against the kernel source the rig built from.
SRC=$(sed -n 's/^SRC=//p' "${DEVMEMTCP_CACHE:-/var/cache/devmemtcp}/build/normal/devmemtcp.env" 2>/dev/null)
ours=$(sed -n 's/^[[:space:]]*DMT_VAL_MSG_SOCK_DEVMEM[[:space:]]*=[[:space:]]*\(0x[0-9a-fA-F]*\).*/\1/p' "$TOP/lib/dmt-uapi.h")
theirs=$(sed -n 's/^#define[[:space:]]*MSG_SOCK_DEVMEM[[:space:]]*\(0x[0-9a-fA-F]*\).*/\1/p' "$SRC/include/linux/socket.h" 2>/dev/null)
if [ -z "$SRC" ] || [ ! -f "$SRC/include/linux/socket.h" ]; then
	ktap_fail "MSG_SOCK_DEVMEM against the kernel source: no kernel tree (fix: vm/build)"
elif [ -n "$ours" ] && [ "$((ours))" = "$((theirs))" ]; then
	ktap_ok "MSG_SOCK_DEVMEM = $ours in dmt-uapi.h and in the rig kernel's include/linux/socket.h"
else
	ktap_fail "MSG_SOCK_DEVMEM: dmt-uapi.h says '${ours}', the rig kernel's include/linux/socket.h '${theirs}'"
fi
ktap_done
