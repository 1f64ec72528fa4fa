#!/usr/bin/env bash
# vm/run: prints the built release, carries CMD's exit status, and fails
# on a guest kernel WARNING even when CMD exits 0 (tests/kmod/dmt_warn).
. "$(dirname "$0")/../lib/ktap.sh"
cd "$TOP" || exit 1
ENVF=${DEVMEMTCP_CACHE:-/var/cache/devmemtcp}/build/normal/devmemtcp.env
[ -f "$ENVF" ] || ktap_bail "vm/run self-tests: no kernel built ($ENVF missing; fix: vm/build)"
. "$ENVF"

out=$(vm/run -- sh -c 'test -c /dev/udmabuf && uname -r' 2>&1)
rc=$?
if [ $rc = 0 ] && printf '%s\n' "$out" | grep -qx "$KERNEL_RELEASE"; then
	ktap_ok "vm/run prints the built release ($KERNEL_RELEASE) with /dev/udmabuf present"
else
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
	ktap_fail "vm/run prints the built release (rc $rc)"
fi

printf '%s\n' "$out" | grep -q -E '^vm: booting .* with (KVM|TCG)' &&
	ktap_ok "vm/run says whether it uses KVM or TCG" ||
	ktap_fail "vm/run says whether it uses KVM or TCG"

vm/run -- false >/dev/null 2>&1
rc=$?
[ $rc != 0 ] && ktap_ok "vm/run -- false exits non-zero ($rc)" || ktap_fail "vm/run -- false exits non-zero"

vm/run -- sh -c 'exit 7' >/dev/null 2>&1
rc=$?
[ $rc = 7 ] && ktap_ok "vm/run carries the exit status (7)" || ktap_fail "vm/run carries the exit status (got $rc, want 7)"

out=$(vm/run -- sh -c 'insmod "$DEVMEMTCP_TEST_MODULES/dmt_warn/dmt_warn.ko" && echo insmod-ok' 2>&1)
rc=$?
if [ $rc != 0 ] && printf '%s\n' "$out" | grep -q '^insmod-ok' &&
	printf '%s\n' "$out" | grep -q 'kernel splat during the run'; then
	ktap_ok "a guest WARNING fails vm/run although CMD exited 0 (rc $rc)"
else
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
	ktap_fail "a guest WARNING fails vm/run although CMD exited 0 (rc $rc)"
fi
ktap_done
