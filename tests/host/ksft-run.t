#!/usr/bin/env bash
# cap: 60
# tests/lib/ksft.sh's ksft_run and tests/lib/ksft-scaled.py on this machine,
# with a stand-in selftest (no VM, no traffic):
# - each failed case is shown with its own diagnostics, not with the last
#   lines of the whole output (a CI log showed test_rss_context_overlap's
#   failure with _overlap2's and _flow_hash's reasons);
# - the Python random seed: ksft-scaled.py prints it; KSFT_SEED_OF[NAME]
#   pins it (two runs draw the same), KSFT_SEED overrides the pin, else a
#   fresh one each run; a KSFT_SEED that is not a number is refused, naming
#   the fix;
# - tests/lib/rss-spread.py (how far an RSS key can spread rss_ctx.py's
#   flows): its Toeplitz hash and its queues, checked against real hashes.
set -o pipefail
. "$(dirname "$0")/../lib/ktap.sh"
. "$TOP/tests/lib/dmveth.sh"
. "$TOP/tests/lib/ksft.sh"

dir=$(mktemp -d)
KSFT_LOG=$(mktemp -d)
trap 'rm -rf "$dir" "$KSFT_LOG"' EXIT
cat >"$dir/fake.py" <<'EOF'
import random
print("TAP version 13")
print("1..3")
print(f"# draw {random.random()!r}")
print("# Check failed: the first case's reason")
print("not ok 1 fake.test_one")
print("# between the first and the second")
print("ok 2 fake.test_two")
print("# Check failed: the third case's reason")
print("not ok 3 fake.test_three")
print("# Totals: pass:1 fail:2 xfail:0 xpass:0 skip:0 error:0")
raise SystemExit(1)
EOF
unset KSFT_SEED

# block OUT CASE: the lines ksft_run printed before CASE's result line,
# after the result line before it
block() {
	awk -v c="$2" '$0 ~ "^not ok [0-9]+ fake " c "$" {printf "%s", b; exit}
		/^(not )?ok / {b = ""; next} {b = b $0 "\n"}' <<<"$1"
}
draw() { sed -n 's/^# draw //p' "$KSFT_LOG/fake"; }

out=$(ksft_run "$dir" fake 30 1)
one=$(block "$out" test_one)
three=$(block "$out" test_three)
if [[ $one == *"first case's reason"* && $one != *"third case's"* &&
	$three == *"third case's reason"* && $three != *"first case's"* && $three != *between* ]]; then
	ktap_ok "ksft_run: each failed case shows its own diagnostics only"
else
	echo "$out" | sed 's/^/# | /'
	ktap_fail "ksft_run: each failed case shows its own diagnostics only (test_one: '$one', test_three: '$three')"
fi
if grep -q '^not ok [0-9]* fake.py exits 0 with every planned case reported (exit 1, plan 3, 3 reported)$' <<<"$out"; then
	ktap_ok "ksft_run: a selftest exiting 1 fails its exit line"
else
	ktap_fail "ksft_run: a selftest exiting 1 fails its exit line: $(grep 'fake.py exits' <<<"$out")"
fi

declare -A KSFT_SEED_OF=([fake]=5)
out=$(ksft_run "$dir" fake 30 1)
d1=$(draw)
(ksft_run "$dir" fake 30 1) >/dev/null
d2=$(draw)
want=$(python3 -c 'import random; random.seed(5); print(repr(random.random()))')
if [[ $out == *"random.seed(5))"* ]] && [ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d1" = "$want" ]; then
	ktap_ok "KSFT_SEED_OF[fake]=5: the seed is printed and two runs draw the same ($d1)"
else
	ktap_fail "KSFT_SEED_OF[fake]=5: seed printed, same draws ($d1, $d2; want $want; $(head -n 1 <<<"$out"))"
fi
out=$(KSFT_SEED=7 ksft_run "$dir" fake 30 1)
d1=$(draw)
want=$(python3 -c 'import random; random.seed(7); print(repr(random.random()))')
if [[ $out == *"random.seed(7))"* ]] && [ "$d1" = "$want" ]; then
	ktap_ok "KSFT_SEED=7 overrides the pinned seed"
else
	ktap_fail "KSFT_SEED=7 overrides the pinned seed (drew $d1, want $want; $(head -n 1 <<<"$out"))"
fi
unset KSFT_SEED_OF
out=$(ksft_run "$dir" fake 30 1)
s1=$(grep -m 1 -oE 'random\.seed\([0-9]+\)' <<<"$out")
d1=$(draw)
out=$(ksft_run "$dir" fake 30 1)
s2=$(grep -m 1 -oE 'random\.seed\([0-9]+\)' <<<"$out")
d2=$(draw)
if [ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ] && [ "$d1" != "$d2" ]; then
	ktap_ok "no seed given: each run prints a fresh one ($s1, $s2)"
else
	ktap_fail "no seed given: each run prints a fresh one ('$s1' '$s2', draws $d1 $d2)"
fi
(KSFT_SEED=abc ksft_run "$dir" fake 30 1) >/dev/null
if grep -q "KSFT_SEED='abc' is not a number (fix: " "$KSFT_LOG/fake" && ! grep -q '^# draw' "$KSFT_LOG/fake"; then
	ktap_ok "KSFT_SEED=abc is refused before the selftest runs, naming the fix"
else
	ktap_fail "KSFT_SEED=abc is refused before the selftest runs: $(head -n 3 "$KSFT_LOG/fake")"
fi

# tests/lib/rss-spread.py, which 49-nic-selftests.t runs on the RSS key
# rss_ctx.py leaves: its Toeplitz hash against the Microsoft RSS
# verification vectors (key 6d5a...01fa; computed only, nothing is sent);
# the queues it says source ports differing in bits 1-9 reach against the
# queues the 512 even ports of a 1024-port block really hash to, for 40
# random keys and, for IPv4 and IPv6 each, a key with the bits those ports
# reach cleared (1 queue) and one with only the table's bit 0 left (2
# queues, one half); and what it prints for those.
RS=$TOP/tests/lib/rss-spread.py
MSKEY=6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa
got4=$("$RS" --hash $MSKEY 66.9.149.187 161.142.100.80 2794 1766 2>&1)
got6=$("$RS" --hash $MSKEY 3ffe:2501:200:1fff::7 3ffe:2501:200:3::1 2794 1766 2>&1)
if [ "$got4" = 51ccc178 ] && [ "$got6" = 40207d3d ]; then
	ktap_ok "rss-spread.py's Toeplitz hash gives the Microsoft verification vectors' 51ccc178 (IPv4) and 40207d3d (IPv6)"
else
	ktap_fail "rss-spread.py's Toeplitz hash gives the Microsoft verification vectors' 51ccc178 and 40207d3d (got $got4, $got6)"
fi
got=$(python3 - "$RS" <<'EOF'
import importlib.util, random, sys
spec = importlib.util.spec_from_file_location("rs", sys.argv[1])
rs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rs)
def clear(key, bits, keep=None):
    k = bytearray(key)
    for b in bits:
        k[b // 8] &= ~(0x80 >> (b % 8)) & 0xFF
    if keep is not None:
        k[keep // 8] |= 0x80 >> (keep % 8)
    return bytes(k)
cases = [(random.randbytes(40), random.choice((64, 256))) for _ in range(40)]
for a in (64, 256):
    # table bits 1 and 0 of port bits 1-9: key bits a+36..a+44, a+37..a+45
    cases.append((clear(random.randbytes(40), range(a + 36, a + 46)), a))
    cases.append((clear(random.randbytes(40), range(a + 36, a + 45), a + 45), a))
bad = 0
for key, a in cases:
    addrs = bytes(range(1, 1 + a // 8))
    p0 = random.randrange(32768, 60000) & ~1023
    seen = [rs.toeplitz(key, addrs + (p0 + 2 * i).to_bytes(2, "big") +
                        (5201).to_bytes(2, "big")) & 3 for i in range(512)]
    if set(seen) != {seen[0] ^ x for x in rs.spread(key, a)}:
        bad += 1
print(bad, len(cases))
for key, a in cases[-4:]:
    print(":".join("%02x" % b for b in key), "-4" if a == 64 else "-6")
EOF
)
read -r bad n <<<"$(head -n 1 <<<"$got")"
outs=$(tail -n 4 <<<"$got" | while read -r k f; do "$RS" "$f" "$k" 2>&1; done | paste -sd '|')
want="1 queue, one half|2 queues, one half|1 queue, one half|2 queues, one half"
if [ "$bad" = 0 ] && [ "$n" = 44 ] && [ "$outs" = "$want" ]; then
	ktap_ok "rss-spread.py: the queues it gives match the real hashes of the 512 even ports of a 1024-port block for 44 keys; the 4 made keys print '$outs'"
else
	ktap_fail "rss-spread.py: the queues it gives match real hashes (${bad:-?} of ${n:-?} keys differ; the made keys print '$outs', want '$want')"
fi
ktap_done
