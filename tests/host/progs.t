#!/usr/bin/env bash
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
ktap_done
