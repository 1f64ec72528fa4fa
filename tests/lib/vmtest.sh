# shellcheck shell=bash
# Helpers the devmemtcp VM tests (vm/50, vm/60) share.  Source it after
# ktap.sh.

# relay LABEL CMD...: CMD's KTAP lines as this file's, prefixed with LABEL;
# a non-zero exit, crash, timeout or silence of CMD is a failure of its own
# (ktap_relay in ktap.sh).
relay() { KTAP_RELAY_KEEP=${LOG:+$LOG/relay} ktap_relay "$@"; }

# json FILE KEY: a top-level (or dotted) value from devmemtcp -j output
json() {
	python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1" "$2" 2>/dev/null
}
