# shellcheck shell=bash
# Helpers the devmemtcp command-line tests (host/send-cli, host/recv-cli)
# share.  Source it after ktap.sh; they use $TOOL (the devmemtcp binary)
# and $T (a scratch directory).

# expect NAME EXIT PATTERN ARGS...: devmemtcp ARGS fails with exit EXIT and
# exactly one stderr line "error: ...PATTERN... (FIX)".
expect() {
	local name=$1 want=$2 pat=$3 rc lines
	shift 3
	timeout 60 "$TOOL" "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	lines=$(wc -l <"$T/err")
	if [ $rc = "$want" ] && [ "$lines" = 1 ] && grep -q -E "^error: .*$pat.* \(.+\)\$" "$T/err"; then
		ktap_ok "$name: exit $rc: $(cat "$T/err")"
	else
		sed 's/^/# stdout: /' "$T/out"
		sed 's/^/# stderr: /' "$T/err"
		ktap_fail "$name (exit $rc, want $want)"
	fi
}
