#!/usr/bin/env bash
# cap: 100
# vm/run: prints the built release, passes the test variables KSFT_SEED
# and DEVMEMTCP_FULL into the guest, carries CMD's exit status, and fails
# on a guest kernel WARNING even when CMD exits 0 (tests/kmod/dmt_warn).
. "$(dirname "$0")/../lib/ktap.sh"
cd "$TOP" || exit 1
ENVF=${DEVMEMTCP_CACHE:-/var/cache/devmemtcp}/build/normal/devmemtcp.env
[ -f "$ENVF" ] || ktap_bail "vm/run self-tests: no kernel built ($ENVF missing; fix: vm/build)"
. "$ENVF"

# One boot for the release, the accelerator line, the exit status carried
# (7: neither 0 nor vm/run's own 1) and the clean-log line; one for a WARN.
out=$(KSFT_SEED=17 DEVMEMTCP_FULL=1 vm/run -- sh -c 'test -c /dev/udmabuf && uname -r; echo "env: $KSFT_SEED $DEVMEMTCP_FULL"; exit 7' 2>&1)
rc=$?
if grep -qx "$KERNEL_RELEASE" <<<"$out"; then
	ktap_ok "vm/run prints the built release ($KERNEL_RELEASE) with /dev/udmabuf present"
else
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
	ktap_fail "vm/run prints the built release (rc $rc)"
fi
grep -q -E '^vm: booting .* with (KVM|TCG)' <<<"$out" &&
	ktap_ok "vm/run says whether it uses KVM or TCG" ||
	ktap_fail "vm/run says whether it uses KVM or TCG"
grep -qx 'env: 17 1' <<<"$out" &&
	ktap_ok "vm/run passes KSFT_SEED and DEVMEMTCP_FULL into the guest" ||
	ktap_fail "vm/run passes KSFT_SEED and DEVMEMTCP_FULL into the guest (got '$(grep '^env:' <<<"$out")')"
[ $rc = 7 ] && ktap_ok "vm/run carries the exit status (7)" || ktap_fail "vm/run carries the exit status (got $rc, want 7)"
grep -q '^vm: guest kernel log clean' <<<"$out" &&
	ktap_ok "vm/run says the guest kernel log was checked and clean" ||
	ktap_fail "vm/run says the guest kernel log was checked and clean"

out=$(vm/run -- sh -c 'insmod "$DEVMEMTCP_TEST_MODULES/dmt_warn/dmt_warn.ko" && echo insmod-ok' 2>&1)
rc=$?
if [ $rc != 0 ] && grep -q '^insmod-ok' <<<"$out" &&
	grep -q 'kernel splat during the run' <<<"$out"; then
	ktap_ok "a guest WARNING fails vm/run although CMD exited 0 (rc $rc)"
else
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
	ktap_fail "a guest WARNING fails vm/run although CMD exited 0 (rc $rc)"
fi
ktap_done
