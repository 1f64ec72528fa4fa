# shellcheck shell=bash
# KTAP helpers for shell tests.  Source it; each test prints one line per
# check: "ok N name", "not ok N name" or "ok N name # SKIP reason".
# A .t file's lines count; its exit status counts only when it is 2 or more
# (a syntax error, a crash, a timeout): that is one more failure.
KTAP_N=0
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
ktap_ok() { KTAP_N=$((KTAP_N + 1)); echo "ok $KTAP_N $*"; }
ktap_fail() { KTAP_N=$((KTAP_N + 1)); echo "not ok $KTAP_N $*"; }
ktap_skip() { # ktap_skip NAME REASON
	KTAP_N=$((KTAP_N + 1))
	echo "ok $KTAP_N $1 # SKIP $2"
}
# ktap_check NAME CMD...: ok when CMD exits 0; on failure its output is shown
# as diagnostic lines ("# ...").
ktap_check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ktap_ok "$name"
	else
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
		ktap_fail "$name"
	fi
}
