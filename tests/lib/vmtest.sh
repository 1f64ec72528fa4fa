# shellcheck shell=bash
# Helpers the devmemtcp VM tests (vm/50, vm/60) share.  Source it after
# ktap.sh; relay needs $LOG, a directory for its scratch file.

# relay LABEL CMD...: CMD's KTAP lines as this file's, prefixed with LABEL;
# a non-zero exit of CMD is a failure of its own.
relay() {
	local label=$1 rc l name
	shift
	"$@" >"$LOG/relay" 2>&1
	rc=$?
	while read -r l; do
		name=$(sed -E 's/^(not )?ok ([0-9]+|-) //' <<<"$l")
		case $l in
		"not ok "*) ktap_fail "$label: $name" ;;
		*"# SKIP"*) ktap_skip "$label: ${name%% # SKIP*}" "${name#* # SKIP }" ;;
		*) ktap_ok "$label: $name" ;;
		esac
	done < <(grep -E '^(not )?ok ' "$LOG/relay")
	if [ $rc != 0 ]; then
		grep '^#' "$LOG/relay" | tail -n 10
		ktap_fail "$label exits 0 (exit $rc)"
	fi
}

# json FILE KEY: a top-level (or dotted) value from devmemtcp -j output
json() {
	python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1" "$2" 2>/dev/null
}
