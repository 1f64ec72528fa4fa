#!/usr/bin/env bash
# cap: 100
# vm/run: prints the built release, passes the test variables KSFT_SEED
# and DEVMEMTCP_FULL into the guest, carries CMD's exit status, and fails
# on a guest kernel WARNING even when CMD exits 0 (tests/kmod/dmt_warn).
# Under TCG the guest CPU has neither ERMS nor FSRM unless DEVMEMTCP_CPU
# names another model (max, with ERMS, in the second boot), and a DEVMEMTCP_CPU that
# is no model name is refused before any boot.
. "$(dirname "$0")/../lib/ktap.sh"
cd "$TOP" || exit 1
ENVF=${DEVMEMTCP_CACHE:-/var/cache/devmemtcp}/build/normal/devmemtcp.env
[ -f "$ENVF" ] || ktap_bail "vm/run self-tests: no kernel built ($ENVF missing; fix: vm/build)"
. "$ENVF"

# One boot for the release, the accelerator line, the exit status carried
# (7: neither 0 nor vm/run's own 1) and the clean-log line; one for a WARN.
ERMS='echo "erms: $(grep -o -w -E "erms|fsrm" /proc/cpuinfo | sort -u | tr "\n" " ")."'
out=$(KSFT_SEED=17 DEVMEMTCP_FULL=1 vm/run -- sh -c "test -c /dev/udmabuf && uname -r; $ERMS"'; echo "env: $KSFT_SEED $DEVMEMTCP_FULL"; exit 7' 2>&1)
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
TCG=0
grep -q '^vm: booting .* with TCG' <<<"$out" && TCG=1
if [ $TCG = 0 ]; then
	ktap_skip "TCG's default CPU model: no ERMS, no FSRM" "this boot used KVM (-cpu host)"
elif grep -q -- '-cpu max,erms=off,fsrm=off' <<<"$out" && grep -qx 'erms: \.' <<<"$out"; then
	ktap_ok "TCG's default CPU model: -cpu max,erms=off,fsrm=off, the guest has neither flag"
else
	ktap_fail "TCG's default CPU model: -cpu max,erms=off,fsrm=off, the guest has neither flag (got '$(grep -E '^(vm: booting|erms:)' <<<"$out" | tr '\n' ' ')')"
fi
grep -q '^vm: guest kernel log clean' <<<"$out" &&
	ktap_ok "vm/run says the guest kernel log was checked and clean" ||
	ktap_fail "vm/run says the guest kernel log was checked and clean"
out=$(DEVMEMTCP_CPU='max;true' vm/run -- true 2>&1)
rc=$?
if [ $rc = 1 ] && grep -q "DEVMEMTCP_CPU='max;true' is not a qemu CPU model (fix:" <<<"$out" &&
	! grep -q '^vm: booting' <<<"$out"; then
	ktap_ok "DEVMEMTCP_CPU='max;true' refused before booting: $out"
else
	printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
	ktap_fail "DEVMEMTCP_CPU='max;true' refused before booting (rc $rc)"
fi

out=$(DEVMEMTCP_CPU=max vm/run -- sh -c "$ERMS"'; insmod "$DEVMEMTCP_TEST_MODULES/dmt_warn/dmt_warn.ko" && echo insmod-ok' 2>&1)
rc=$?
if [ $TCG = 0 ]; then
	ktap_skip "DEVMEMTCP_CPU=max: the guest has ERMS" "this boot used KVM (-cpu host)"
elif grep -q -- '-cpu max:' <<<"$out" && grep -q -x -E 'erms: erms (fsrm )?\.' <<<"$out"; then
	ktap_ok "DEVMEMTCP_CPU=max: -cpu max, the guest has ERMS"
else
	ktap_fail "DEVMEMTCP_CPU=max: -cpu max, the guest has ERMS (got '$(grep -E '^(vm: booting|erms:)' <<<"$out" | tr '\n' ' ')')"
fi
if [ $rc != 0 ] && grep -q '^insmod-ok' <<<"$out" &&
	grep -q 'kernel splat during the run' <<<"$out"; then
	ktap_ok "a guest WARNING fails vm/run although CMD exited 0 (rc $rc)"
else
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/# /'
	ktap_fail "a guest WARNING fails vm/run although CMD exited 0 (rc $rc)"
fi
ktap_done
