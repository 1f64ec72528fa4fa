#!/usr/bin/env bash
# cap: 30
# Kernel style: scripts/checkpatch.pl --strict --no-tree -f on every module
# file (kernel/ and tests/kmod/): no errors, warnings or checks.
. "$(dirname "$0")/../lib/ktap.sh"
cd "$TOP" || exit 1
SRC=$(sed -n 's/^SRC=//p' "${DEVMEMTCP_CACHE:-/var/cache/devmemtcp}/build/normal/devmemtcp.env" 2>/dev/null)
if [ ! -f "$SRC/scripts/checkpatch.pl" ]; then
	ktap_fail "checkpatch.pl from the rig's kernel tree (fix: vm/build)"
	exit 1
fi
for f in kernel/*/*.[ch] tests/kmod/*/*.[ch]; do
	[ -f "$f" ] || continue
	out=$(perl "$SRC/scripts/checkpatch.pl" --strict --no-tree --show-types -f "$f" 2>&1)
	if grep -q '^total: 0 errors, 0 warnings, 0 checks' <<<"$out"; then
		ktap_ok "checkpatch --strict $f"
	else
		printf '%s\n' "$out" | grep -E '^(ERROR|WARNING|CHECK)|^#' | head -n 20 | sed 's/^/# /'
		ktap_fail "checkpatch --strict $f"
	fi
done
ktap_done
