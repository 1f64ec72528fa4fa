#!/usr/bin/env bash
# asan: yes
# Host-side runs of the C test programs that need no VM: our uapi numbers
# against this system's headers, and the host kernel's netdev genl family.
. "$(dirname "$0")/../lib/ktap.sh"
for p in uapi-consts netdev-family udmabuf-smoke lib-dmabuf lib-netlink rx-engine nic-setup; do
	if [ ! -x "$BUILD/tests/$p" ]; then
		ktap_fail "$p built (make all)"
		continue
	fi
	"$BUILD/tests/$p" 2>&1 | sed "s/^\(\(not \)\{0,1\}ok \)[0-9]* /\1- $p (host): /"
done
