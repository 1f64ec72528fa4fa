#!/usr/bin/env bash
# cap: 30
# The schema of `make bench`'s JSON (issue 13), not its values:
# - a tiny real host-only run (bench/loopback: 16 MiB over 127.0.0.1,
#   2 rounds, no strace pass) plus VM records made up here and marked as
#   such (no VM in host tests; they only exercise the writer), through
#   bench/report.py: the nine ratio keys present and numbers, every case
#   with MB/s median/min/max and, per end, CPU per GB and wake-ups per MB as
#   median/min/max numbers, goals, per-round ratios, the method, the table;
#   the SVG plots written (when gnuplot is installed);
# - a VM case failing in every round: report.py exits 1 and names the
#   ratio it could not measure, which is absent, never a made-up number;
# - with BENCH_JSON=FILE (e.g. bench/results/latest.json after `make
#   bench`): that file too.
set -o pipefail
. "$(dirname "$0")/../lib/ktap.sh"
cd "$TOP" || exit 1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
if [ ! -x "$BUILD/bench/runstat" ] || [ ! -x "$BUILD/bin/devmemtcp" ]; then ktap_bail "make all (build/bench/runstat, devmemtcp)"; fi

cat >"$T/schema.py" <<'PY'
import json, sys
KEYS = ["devmem_vs_iperf3_veth", "cpu_per_gb_devmem_vs_iperf3", "devmem_vs_memcpy", "validate_cost",
        "devmem_vs_ncdevmem", "flows4_vs_flows1", "lib_user_cpu_share", "loopback_copy_vs_iperf3",
        "dmveth_vs_veth_iperf3"]
j = json.load(open(sys.argv[1]))
need_vm = sys.argv[2] == "full" if len(sys.argv) > 2 else True
err = []
num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
def mmm(v, where):
    if not isinstance(v, dict) or not all(num(v.get(k)) for k in ("median", "min", "max")):
        err.append("%s: not {median, min, max} numbers: %r" % (where, v)); return
    if not v["min"] <= v["median"] <= v["max"]:
        err.append("%s: min <= median <= max fails: %r" % (where, v))
for k in KEYS:
    if need_vm or k == "loopback_copy_vs_iperf3":
        if not num(j.get(k)):
            err.append("%s: not a number: %r" % (k, j.get(k)))
        if k not in j.get("goals", {}) or j["goals"][k].get("op") not in (">=", "<="):
            err.append("goals.%s missing" % k)
        mmm(j.get("ratio_rounds", {}).get(k), "ratio_rounds." + k)
for k in ("schema", "rounds", "cases", "method", "vm", "host", "stamp"):
    if k not in j:
        err.append("top-level %s missing" % k)
cases = j.get("cases", {})
want = ["host_iperf3_copy", "host_dmt_copy", "host_iperf3_z", "host_dmt_zerocopy", "host_dmt_copy_v7"]
if not num(j.get("extra", {}).get("validate_cost_host_copy")):
    err.append("extra.validate_cost_host_copy: not a number: %r" % j.get("extra", {}).get("validate_cost_host_copy"))
if need_vm:
    want += ["memcpy", "iperf3_veth_copy", "iperf3_veth_z", "iperf3_dmveth", "ncdevmem", "ncdevmem_v7",
             "dmt_devmem", "dmt_devmem_nogro", "dmt_devmem_v7", "dmt_zerocopy", "dmt_zerocopy_v7", "dmt_copy", "dmt_copy_v7",
             "dmt_flows@1", "dmt_flows@2", "dmt_flows@4", "dmt_rxpage@4096", "dmt_rxpage@16384",
             "dmt_rxpage@65536"] + ["dmt_chunk@%d" % (k << 10) for k in (4, 16, 64, 256, 1024)] + \
            ["iperf3_veth_chunk@%d" % (k << 10) for k in (4, 16, 64, 256, 1024)]
for w in want:
    if w not in cases:
        err.append("case %s missing" % w)
for name, c in cases.items():
    for k in ("case", "where", "bytes", "rounds", "ok_rounds"):
        if k not in c:
            err.append("%s.%s missing" % (name, k))
    mmm(c.get("mbps"), name + ".mbps")
    if c.get("case") == "memcpy":
        continue
    for e in ("send", "recv"):
        for f in ("cpu_user_s_per_gb", "cpu_sys_s_per_gb", "cpu_s_per_gb", "wakeups_per_mb"):
            mmm((c.get(e) or {}).get(f), "%s.%s.%s" % (name, e, f))
    mmm(c.get("cpu_s_per_gb_both"), name + ".cpu_s_per_gb_both")
    s = c.get("syscalls_per_mb", "absent")
    if s != None and not (isinstance(s, dict) and all(num(s.get(k)) for k in ("send", "recv", "both"))):
        err.append("%s.syscalls_per_mb: neither null nor {send, recv, both} numbers: %r" % (name, s))
    if "tool_syscalls_per_mb" not in c:
        err.append("%s.tool_syscalls_per_mb missing" % name)
for e in err[:15]:
    print("# " + e)
print("# %d cases, %d problems" % (len(cases), len(err)))
sys.exit(1 if err else 0)
PY

# the host part, measured for real (tiny)
if BENCH_ROUNDS=2 BENCH_STRACE=0 BENCH_HOST_BYTES=$((16 << 20)) timeout 60 bench/loopback >"$T/raw" 2>"$T/lo.err" &&
	[ "$(grep -c '^BENCH .*"ok": true' "$T/raw")" = 12 ]; then
	ktap_ok "bench/loopback: 6 host cases x 2 rounds over 127.0.0.1, each ok"
else
	sed 's/^/# /' "$T/lo.err" | tail -n 10
	ktap_fail "bench/loopback: 6 host cases x 2 rounds over 127.0.0.1, each ok ($(grep -c '^BENCH' "$T/raw") lines)"
fi

# VM records MADE UP HERE (the schema test has no VM): the shape bench/dmveth
# prints, values irrelevant, for the writer only
python3 - "$T/raw" >"$T/vm.raw" <<'PY'
import json
def rec(case, r, x=None, nbytes=64 << 20, tool=None, rep=0, mbps=None):
    st = lambda k: [0.5 + 0.01 * r + 0.001 * k, 0.01, 0.3 + 0.01 * k, 100 + r, 3, 0]
    return "BENCH " + json.dumps({"case": case, "x": x, "round": r, "rep": rep, "bytes": nbytes, "ok": True,
                                  "send": st(1), "recv": st(2), "tool_syscalls": tool,
                                  "mbps_tool": 100.0 + r if mbps is None else mbps, "rate_by": "made up",
                                  "note": "made up by bench-schema.t"})
print("vm: booting 7.3.4 (normal) with TCG (-accel tcg -cpu max,erms=off: made up), 2 cpus, 2G")
print("bench: 2 vCPUs, 7.3.4-made-up, 2 rounds of N cases, 64 MiB per transfer")
for r in range(2):
    print("BENCH " + json.dumps({"case": "memcpy", "x": None, "round": r, "bytes": 0, "ok": True, "mbps": 1500 + r,
                                 "send": [1, 1, 0, 1, 1, 0], "recv": None, "tool_syscalls": None, "note": "made up"}))
    for c in ("iperf3_veth_copy", "iperf3_veth_z", "iperf3_dmveth", "ncdevmem", "ncdevmem_v7"):
        print(rec(c, r))
    print(rec("iperf3_veth_tiny", r, nbytes=1 << 20))
    print(rec("dmt_devmem_tiny", r, nbytes=1 << 20, tool=10))
    for c in ("dmt_devmem", "dmt_devmem_nogro", "dmt_devmem_v7", "dmt_zerocopy", "dmt_zerocopy_v7", "dmt_copy", "dmt_copy_v7"):
        print(rec(c, r, tool=1000))
    for n in (1, 2, 4):
        print(rec("dmt_flows", r, n, tool=1000))
    for s in (4096, 16384, 65536):
        print(rec("dmt_rxpage", r, s))
    for k in (4, 16, 64, 256, 1024):
        print(rec("dmt_chunk", r, k << 10, tool=1000))
        print(rec("iperf3_veth_chunk", r, k << 10))
    # the anchors' extra runs (BENCH_ANCHOR): dmveth 100 + r + rep, veth
    # 200 + 10 * rep; paired run k with run k, the six per-round ratios
    # are those quotients (by round alone there would be two)
    for rep in (1, 2):
        print(rec("iperf3_dmveth", r, rep=rep, mbps=100.0 + r + rep))
        print(rec("iperf3_veth_copy", r, rep=rep, mbps=200.0 + 10 * rep))
for c in ("dmt_devmem", "iperf3_veth_copy"):
    print("STRACE " + json.dumps({"case": c, "bytes": 4 << 20, "ok": True, "send": 1000, "recv": 2000}))
PY
cat "$T/raw" "$T/vm.raw" >"$T/all.raw"
python3 bench/report.py "$T/all.raw" "$T/out" --stamp test >"$T/table" 2>"$T/report.err"
rc=$?
if [ $rc = 0 ] && python3 "$T/schema.py" "$T/out/latest.json" full >"$T/check" 2>&1 &&
	[ -f "$T/out/bench-test.json" ] && cmp -s "$T/out/latest.json" "$T/out/bench-test.json"; then
	ktap_ok "report.py: latest.json and its dated copy, the nine keys numbers, every case median/min/max ($(tail -n 1 "$T/check" | sed 's/^# //'))"
else
	sed 's/^/# /' "$T/check" "$T/report.err" 2>/dev/null | tail -n 20
	ktap_fail "report.py: latest.json and its dated copy, the nine keys numbers, every case median/min/max (exit $rc)"
fi
# the anchors run three times a round: six (round, rep) pairs, each its own
# ratio, and the case's median over its six runs
if python3 -c '
import json, statistics, sys
j = json.load(open(sys.argv[1]))
if j["vm"]["cpu"] != "max,erms=off":
    sys.exit("vm.cpu: %r, not the booting line'"'"'s max,erms=off" % j["vm"]["cpu"])
want = sorted((100.0 + r + k) / (100.0 + r if k == 0 else 200.0 + 10 * k) for r in (0, 1) for k in (0, 1, 2))
got = j["ratio_rounds"]["dmveth_vs_veth_iperf3"]
dm = statistics.median([100.0 + r + k for r in (0, 1) for k in (0, 1, 2)])
ok = (got["n"] == 6 and abs(got["min"] - want[0]) < 1e-9 and abs(got["max"] - want[-1]) < 1e-9 and
      abs(got["median"] - statistics.median(want)) < 1e-9 and
      abs(j["cases"]["iperf3_dmveth"]["mbps"]["median"] - dm) < 1e-9)
print("# ratio_rounds %s; iperf3_dmveth median %s" % (got, j["cases"]["iperf3_dmveth"]["mbps"]["median"]))
sys.exit(0 if ok else 1)' "$T/out/latest.json" >"$T/anchor" 2>&1; then
	ktap_ok "report.py: the iperf3 anchors run 3 times a round pair run by run (6 per-round ratios); vm.cpu from the booting line"
else
	cat "$T/anchor"
	ktap_fail "report.py: the iperf3 anchors run 3 times a round pair run by run (6 per-round ratios); vm.cpu from the booting line"
fi
# the table: one line per case, one per ratio
if grep -q '^host_dmt_copy ' "$T/table" && grep -q '^dmt_flows@4 ' "$T/table" &&
	[ "$(grep -c -E '^(devmem_vs_iperf3_veth|cpu_per_gb_devmem_vs_iperf3|devmem_vs_memcpy|validate_cost|devmem_vs_ncdevmem|flows4_vs_flows1|lib_user_cpu_share|loopback_copy_vs_iperf3|dmveth_vs_veth_iperf3) +[0-9.]+ ' "$T/table")" = 9 ]; then
	ktap_ok "report.py: the table has the cases and the nine ratios with values"
else
	sed 's/^/# /' "$T/table" | tail -n 20
	ktap_fail "report.py: the table has the cases and the nine ratios with values"
fi
if command -v gnuplot >/dev/null; then
	n=0
	for f in chunk flows rx-page-size; do
		grep -q '<svg' "$T/out/$f.svg" 2>/dev/null && n=$((n + 1))
	done
	if [ $n = 3 ]; then
		ktap_ok "plots: chunk.svg, flows.svg, rx-page-size.svg are SVG"
	else
		find "$T/out" -ls | sed 's/^/# /'
		ktap_fail "plots: chunk.svg, flows.svg, rx-page-size.svg are SVG ($n of 3)"
	fi
else
	ktap_skip "plots" "gnuplot not installed (apt-get install gnuplot-nox; vm/build installs it)"
fi

# a case that failed in every round: exit 1, the ratio named and absent
grep -v '"case": "dmt_devmem_v7"' "$T/all.raw" >"$T/fail.raw"
sed 's/"case": "dmt_devmem_v7", \(.*\)"ok": true/"case": "dmt_devmem_v7", \1"ok": false/' <(grep '"case": "dmt_devmem_v7"' "$T/all.raw") >>"$T/fail.raw"
python3 bench/report.py "$T/fail.raw" "$T/fail" --stamp fail --no-plots >"$T/ftable" 2>"$T/ferr"
rc=$?
if [ $rc = 1 ] && grep -q 'validate_cost' "$T/ferr" && python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
sys.exit(0 if "validate_cost" not in j and "devmem_vs_ncdevmem" not in j and
         set(j["missing"]) == {"validate_cost", "devmem_vs_ncdevmem"} else 1)' "$T/fail/latest.json"; then
	ktap_ok "a case failed in every round: exit 1, $(cat "$T/ferr")"
else
	sed 's/^/# /' "$T/ferr" | tail -n 5
	ktap_fail "a case failed in every round: exit 1, the ratios it feeds named and absent (exit $rc)"
fi

if [ -n "${BENCH_JSON:-}" ]; then
	if python3 "$T/schema.py" "$BENCH_JSON" full >"$T/check2" 2>&1; then
		ktap_ok "$BENCH_JSON: schema ($(tail -n 1 "$T/check2" | sed 's/^# //'))"
	else
		sed 's/^/# /' "$T/check2" | tail -n 16
		ktap_fail "$BENCH_JSON: schema"
	fi
fi
ktap_done
