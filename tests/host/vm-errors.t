#!/usr/bin/env bash
# cap: 30
# The rig's clear failures: each a one-line error naming the problem and the
# fix, given before any long work: not root, no Debian mirror, too little
# disk, qemu missing.
. "$(dirname "$0")/../lib/ktap.sh"
cd "$TOP" || exit 1
T=$(mktemp -d)
trap 'umount "$T/small" 2>/dev/null; rm -rf "$T"' EXIT

# expect NAME PATTERN CMD...: CMD fails quickly, its error line matches PATTERN.
expect() {
	local name=$1 pat=$2 out rc t0
	shift 2
	t0=$(date +%s)
	out=$(timeout 120 "$@" 2>&1 </dev/null)
	rc=$?
	if [ $rc != 0 ] && [ $rc != 124 ] && grep -q -E "^vm: error: .*$pat" <<<"$out"; then
		ktap_ok "$name: exit $rc in $(($(date +%s) - t0)) s: $(printf '%s\n' "$out" | grep '^vm: error:' | head -n 1)"
	else
		printf '%s\n' "$out" | tail -n 10 | sed 's/^/# /'
		ktap_fail "$name (exit $rc)"
	fi
}

if command -v setpriv >/dev/null; then
	expect "vm/build as non-root" "must run as root.*fix: run it with sudo" \
		setpriv --reuid=65534 --regid=65534 --clear-groups env DEVMEMTCP_CACHE="$T/c0" vm/build
	expect "vm/run as non-root" "must run as root.*fix: run it with sudo" \
		setpriv --reuid=65534 --regid=65534 --clear-groups vm/run -- true
else
	ktap_skip "non-root refusal" "setpriv not available"
fi

# Port 9 on loopback refuses at once: a mirror that is not there.
expect "vm/build without a reachable mirror" "mirror is not reachable.*fix: set DEVMEMTCP_MIRROR=.*DEVMEMTCP_KERNEL_SRC=" \
	env DEVMEMTCP_CACHE="$T/c1" DEVMEMTCP_MIRROR=http://127.0.0.1:9/debian vm/build

mkdir -p "$T/small"
if mount -t tmpfs -o size=64m none "$T/small" 2>/dev/null; then
	expect "vm/build on a too-small disk" "GiB free under .*fix: free space or set DEVMEMTCP_CACHE" \
		env DEVMEMTCP_CACHE="$T/small/cache" vm/build
else
	ktap_skip "too-small disk refusal" "cannot mount a small tmpfs here"
fi

expect "vm/run without qemu" "is missing; fix: apt-get install qemu-system-x86" \
	env DEVMEMTCP_QEMU=/nonexistent/qemu-system-x86_64 vm/run -- true
ktap_done
