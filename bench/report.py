#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench/report.py: turn the "BENCH {json}" / "STRACE {json}" lines that
bench/dmveth (in the VM) and bench/loopback (on the host) print into the
table on stdout, OUT/latest.json plus a dated copy, and SVG plots (gnuplot).

usage: report.py RAW_LOG OUT_DIR [--stamp STAMP] [--duration S] [--no-plots]

Every figure is a median over rounds with its min and max.  Ratios are of
medians; "ratio_rounds" also gives each ratio per round (the rounds
alternate the cases, so round i of one case ran next to round i of the
other) as median/min/max.  Exits 1 when one of the eight ratio keys could
not be measured (a case failed in every round): the JSON then says so in
"missing", and the key is absent, never a made-up number."""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

RATIOS = [
    # key, goal operator, goal, doc
    ("devmem_vs_iperf3_veth", ">=", 2.0,
     "devmemtcp devmem send->recv over dmveth MB/s / iperf3 (copy) over veth MB/s"),
    ("cpu_per_gb_devmem_vs_iperf3", "<=", 0.5,
     "CPU-s per GB, both ends (user+sys): devmemtcp devmem over dmveth / iperf3 copy over veth"),
    ("devmem_vs_memcpy", ">=", 0.5,
     "devmemtcp devmem over dmveth MB/s / single-core memcpy MB/s in the same boot"),
    ("validate_cost", ">=", 0.75,
     "devmemtcp devmem --validate 7 MB/s / devmemtcp devmem MB/s"),
    ("devmem_vs_ncdevmem", ">=", 2.0,
     "devmemtcp devmem --validate 7 MB/s / ncdevmem client -> ncdevmem -l -v 7 MB/s (same path, validation on both)"),
    ("flows4_vs_flows1", ">=", 1.6,
     "4 devmemtcp devmem flows on 4 queues, MB/s in all / 1 flow"),
    ("lib_user_cpu_share", "<=", 0.02,
     "user CPU / (user+sys) CPU of the devmemtcp sender and receiver (devmem, no validation)"),
    ("loopback_copy_vs_iperf3", ">=", 1.0,
     "host loopback: devmemtcp copy send->recv MB/s / iperf3 copy MB/s"),
    ("dmveth_vs_veth_iperf3", ">=", 0.8,
     "iperf3 (copy) over a dmveth pair MB/s / over a veth pair MB/s: what dmveth's own work costs plain TCP (issue 12)"),
]
ENDS = ("send", "recv")


def mmm(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def rate(r):
    """the tool's own transfer rate where it has one (iperf3: the
    receiver's; devmemtcp recv: accept to EOF), else bytes over the
    sender's wall time"""
    if isinstance(r.get("mbps_tool"), (int, float)):
        return r["mbps_tool"]
    w = r["send"][0] if r.get("send") else 0
    return r["bytes"] / 1e6 / w if w > 0 else None


def key_of(case, x):
    return case if x is None else "%s@%s" % (case, x)


def parse(path):
    recs, traces, info = [], [], {"accel": None, "cpu": None, "vcpus": None, "kernel": None}
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.search(r"(?:^|[\s\r])(BENCH|STRACE) (\{.*\})\s*$", line)
            if m:
                try:
                    j = json.loads(m.group(2))
                except ValueError:
                    print("report: unparsable line: %s" % line[:200], file=sys.stderr)
                    continue
                (recs if m.group(1) == "BENCH" else traces).append(j)
                continue
            m = re.search(r"with (TCG|KVM)", line)
            if m and "booting" in line:
                info["accel"] = m.group(1)
                m = re.search(r"-cpu ([^:) ]+)", line)
                info["cpu"] = m.group(1) if m else None
            m = re.match(r"^bench: (\d+) vCPUs, (\S+),", line)
            if m:
                info["vcpus"], info["kernel"] = int(m.group(1)), m.group(2)
    return recs, traces, info


def summarize(recs, traces):
    groups = {}
    for r in recs:
        groups.setdefault(key_of(r["case"], r.get("x")), []).append(r)
    tr = {}
    for t in traces:
        tr[key_of(t["case"], t.get("x"))] = t
    cases = {}
    for k, rs in groups.items():
        r0 = rs[0]
        ok = [r for r in rs if r.get("ok")]
        c = {"case": r0["case"], "x": r0.get("x"), "where": "host" if r0["case"].startswith("host_") else "vm",
             "bytes": r0["bytes"], "rounds": len(rs), "ok_rounds": len(ok),
             "failed_notes": [r.get("note") for r in rs if not r.get("ok")]}
        if r0["case"] == "memcpy":
            c["mbps"] = mmm([r["mbps"] for r in ok])
            c["per_round"] = {"mbps": [r["mbps"] for r in ok], "round": [r["round"] for r in ok],
                              "rep": [r.get("rep", 0) for r in ok]}
            cases[k] = c
            continue
        gb, mb = r0["bytes"] / 1e9, r0["bytes"] / 1e6
        c["mbps_wall"] = mmm([mb / r["send"][0] for r in ok if r["send"] and r["send"][0] > 0])
        c["rate_by"] = sorted(set(r.get("rate_by") or "wall" for r in ok))
        c["mbps"] = mmm([rate(r) for r in ok])
        for e in ENDS:
            c[e] = {
                "cpu_user_s_per_gb": mmm([r[e][1] / gb for r in ok if r[e]]),
                "cpu_sys_s_per_gb": mmm([r[e][2] / gb for r in ok if r[e]]),
                "cpu_s_per_gb": mmm([(r[e][1] + r[e][2]) / gb for r in ok if r[e]]),
                "wakeups_per_mb": mmm([r[e][3] / mb for r in ok if r[e]]),
            }
        c["cpu_s_per_gb_both"] = mmm([(r["send"][1] + r["send"][2] + r["recv"][1] + r["recv"][2]) / gb
                                      for r in ok if r["send"] and r["recv"]])
        c["user_cpu_share"] = mmm([(r["send"][1] + r["recv"][1]) /
                                   max(1e-9, r["send"][1] + r["send"][2] + r["recv"][1] + r["recv"][2])
                                   for r in ok if r["send"] and r["recv"]])
        ts = [r["tool_syscalls"] / mb for r in ok if isinstance(r.get("tool_syscalls"), (int, float))]
        c["tool_syscalls_per_mb"] = mmm(ts)
        t = tr.get(k)
        if t and t.get("ok") and isinstance(t.get("send"), (int, float)) and isinstance(t.get("recv"), (int, float)):
            tmb = t["bytes"] / 1e6
            c["syscalls_per_mb"] = {"send": t["send"] / tmb, "recv": t["recv"] / tmb,
                                    "both": (t["send"] + t["recv"]) / tmb, "bytes": t["bytes"]}
        else:
            c["syscalls_per_mb"] = None
        c["per_round"] = {"round": [r["round"] for r in ok], "rep": [r.get("rep", 0) for r in ok],
                          "mbps": [rate(r) for r in ok],
                          "cpu_s_per_gb_both": [(r["send"][1] + r["send"][2] + r["recv"][1] + r["recv"][2]) / gb
                                                if r["send"] and r["recv"] else None for r in ok]}
        cases[k] = c
    return cases


def med(cases, k, field="mbps"):
    c = cases.get(k)
    if not c or not c.get(field):
        return None
    return c[field]["median"]


def paired(cases, a, b, field="mbps"):
    """per-round ratio a/b over the rounds both have; a case run more than
    once a round (the iperf3 anchors, BENCH_ANCHOR) pairs run k of one
    with run k of the other ("rep")"""
    ca, cb = cases.get(a), cases.get(b)
    if not ca or not cb:
        return None
    fa = dict(zip(zip(ca["per_round"]["round"], ca["per_round"]["rep"]), ca["per_round"][field]))
    fb = dict(zip(zip(cb["per_round"]["round"], cb["per_round"]["rep"]), cb["per_round"][field]))
    vals = [fa[r] / fb[r] for r in fa if r in fb and fa[r] is not None and fb[r]]
    return mmm(vals)


def div(a, b):
    return a / b if a is not None and b else None


def ratios(cases):
    out = {
        "devmem_vs_iperf3_veth": (div(med(cases, "dmt_devmem"), med(cases, "iperf3_veth_copy")),
                                  paired(cases, "dmt_devmem", "iperf3_veth_copy")),
        "cpu_per_gb_devmem_vs_iperf3": (div(med(cases, "dmt_devmem", "cpu_s_per_gb_both"),
                                            med(cases, "iperf3_veth_copy", "cpu_s_per_gb_both")),
                                        paired(cases, "dmt_devmem", "iperf3_veth_copy", "cpu_s_per_gb_both")),
        "devmem_vs_memcpy": (div(med(cases, "dmt_devmem"), med(cases, "memcpy")),
                             paired(cases, "dmt_devmem", "memcpy")),
        "validate_cost": (div(med(cases, "dmt_devmem_v7"), med(cases, "dmt_devmem")),
                          paired(cases, "dmt_devmem_v7", "dmt_devmem")),
        "devmem_vs_ncdevmem": (div(med(cases, "dmt_devmem_v7"), med(cases, "ncdevmem_v7")),
                               paired(cases, "dmt_devmem_v7", "ncdevmem_v7")),
        "flows4_vs_flows1": (div(med(cases, "dmt_flows@4"), med(cases, "dmt_flows@1")),
                             paired(cases, "dmt_flows@4", "dmt_flows@1")),
        "lib_user_cpu_share": (med(cases, "dmt_devmem", "user_cpu_share"), cases.get("dmt_devmem", {}).get("user_cpu_share")),
        "loopback_copy_vs_iperf3": (div(med(cases, "host_dmt_copy"), med(cases, "host_iperf3_copy")),
                                    paired(cases, "host_dmt_copy", "host_iperf3_copy")),
        "dmveth_vs_veth_iperf3": (div(med(cases, "iperf3_dmveth"), med(cases, "iperf3_veth_copy")),
                                  paired(cases, "iperf3_dmveth", "iperf3_veth_copy")),
    }
    return out


def net_cpu(cases, big, tiny):
    """CPU-s per GB of BIG, both ends, less TINY's (the same pair with 1 MiB:
    exec, buffers, bind, NIC set-up, connect), medians"""
    b, t = cases.get(big), cases.get(tiny)
    if not b or not t or not b.get("cpu_s_per_gb_both") or not t.get("cpu_s_per_gb_both"):
        return None
    cb = b["cpu_s_per_gb_both"]["median"] * b["bytes"] / 1e9
    ct = t["cpu_s_per_gb_both"]["median"] * t["bytes"] / 1e9
    return max(0.0, cb - ct) / ((b["bytes"] - t["bytes"]) / 1e9)


def net_user_share(cases, big, tiny):
    """user CPU / all CPU of BIG's two ends, less TINY's (the fixed costs:
    exec, dynamic linking, buffers, bind, NIC set-up), medians"""
    b, t = cases.get(big), cases.get(tiny)

    def secs(c, kind):
        try:
            return sum(c[e][kind]["median"] for e in ENDS) * c["bytes"] / 1e9
        except (KeyError, TypeError):
            return None
    if not b or not t:
        return None
    ub, sb = secs(b, "cpu_user_s_per_gb"), secs(b, "cpu_sys_s_per_gb")
    ut, st = secs(t, "cpu_user_s_per_gb"), secs(t, "cpu_sys_s_per_gb")
    if None in (ub, sb, ut, st):
        return None
    u, a = max(0.0, ub - ut), max(0.0, ub + sb - ut - st)
    return u / a if a > 0 else None


def fmt(v, w=8, p=1):
    if v is None:
        return "-".rjust(w)
    return ("%.*f" % (p, v)).rjust(w)


def table(cases, rat, info, meta):
    lines = []
    lines.append("bench: %s%s, %s vCPUs, kernel %s; %s rounds; %s; medians [min-max]" % (
        info.get("accel") or "?", " -cpu %s" % info["cpu"] if info.get("cpu") else "",
        info.get("vcpus") or "?", info.get("kernel") or "?",
        meta["rounds"], "QUICK sizes" if meta["quick"] else "full sizes"))
    lines.append("%-28s %7s %22s %9s %9s %8s %8s %9s %9s" % (
        "case", "MiB", "MB/s", "sndCPU/GB", "rcvCPU/GB", "sndWk/MB", "rcvWk/MB", "sysc/MB", "toolsc/MB"))
    order = sorted(cases, key=lambda k: (cases[k]["where"], cases[k]["case"], cases[k]["x"] or 0))
    for k in order:
        c = cases[k]
        m = c.get("mbps")
        p = 1 if not m or m["median"] >= 10 else 4
        mb = "%s [%s-%s]" % (fmt(m["median"], 1, p), fmt(m["min"], 1, p - 1), fmt(m["max"], 1, p - 1)) if m else "FAILED"
        if c["ok_rounds"] < c["rounds"]:
            mb += " (%d/%d ok)" % (c["ok_rounds"], c["rounds"])

        def g(e, f):
            x = c.get(e, {}) or {}
            x = x.get(f)
            return x["median"] if x else None
        sc = c.get("syscalls_per_mb")
        ts = c.get("tool_syscalls_per_mb")
        lines.append("%-28s %7s %22s %9s %9s %8s %8s %9s %9s" % (
            k, (fmt(c["bytes"] / 2**20, 1, 0) if c["bytes"] >= 2**20 else "%dK" % (c["bytes"] >> 10)) if c["bytes"] else "-", mb,
            fmt(g("send", "cpu_s_per_gb"), 1, 2), fmt(g("recv", "cpu_s_per_gb"), 1, 2),
            fmt(g("send", "wakeups_per_mb"), 1, 1), fmt(g("recv", "wakeups_per_mb"), 1, 1),
            fmt(sc["both"] if sc else None, 1, 1), fmt(ts["median"] if ts else None, 1, 1)))
    lines.append("")
    lines.append("%-30s %8s %20s %8s %s" % ("ratio", "value", "per round [min-max]", "goal", ""))
    for key, op, goal, _ in RATIOS:
        v, pr = rat[key]
        met = None if v is None else (v >= goal if op == ">=" else v <= goal)
        lines.append("%-30s %8s %20s %8s %s" % (
            key, fmt(v, 1, 3), ("[%s-%s]" % (fmt(pr["min"], 1, 3), fmt(pr["max"], 1, 3))) if pr else "-",
            "%s %g" % (op, goal), "met" if met else ("MISSED" if met is False else "NOT MEASURED")))
    return "\n".join(lines)


def plots(cases, out, stamp):
    """SVGs by gnuplot: against chunk size, flows, rx-page-size"""
    if not shutil.which("gnuplot"):
        print("report: gnuplot missing: no plots (apt-get install gnuplot-nox)", file=sys.stderr)
        return []
    made = []
    dat = os.path.join(out, ".plot-%s" % stamp)
    os.makedirs(dat, exist_ok=True)

    def series(case, name):
        pts = sorted((c["x"], c) for c in cases.values() if c["case"] == case and c.get("mbps") and c["x"])
        path = os.path.join(dat, name + ".dat")
        with open(path, "w") as f:
            for x, c in pts:
                m, cp = c["mbps"], c.get("cpu_s_per_gb_both")
                f.write("%s %g %g %g %g %g %g\n" % (x, m["median"], m["min"], m["max"],
                                                    cp["median"] if cp else 0, cp["min"] if cp else 0,
                                                    cp["max"] if cp else 0))
        return path, len(pts)

    def anchor(k):
        c = cases.get(k)
        if not c or not c.get("mbps"):
            return None
        return c["mbps"]["median"], (c.get("cpu_s_per_gb_both") or {}).get("median")

    def plot(name, xlabel, logx, curves, anchors, xtics=None):
        svg = os.path.join(out, "%s.svg" % name)
        script = ['set terminal svg size 1000,420 dynamic font "sans,11"',
                  'set output "%s"' % svg, "set multiplot layout 1,2", "set key outside bottom center horizontal",
                  'set xlabel "%s"' % xlabel, "set grid"]
        if logx:
            script.append("set logscale x 2")
        if xtics:
            script.append("set xtics (%s)" % xtics)
        for col, ylab, title in ((2, "MB/s", "throughput"), (5, "CPU-s per GB, both ends", "CPU per GB")):
            script.append('set title "%s"; set ylabel "%s"; set yrange [0:*]' % (title, ylab))
            parts = []
            for path, label in curves:
                parts.append('"%s" using 1:%d:%d:%d with yerrorlines title "%s"' % (path, col, col + 1, col + 2, label))
            for label, (mbps, cpu) in anchors:
                v = mbps if col == 2 else cpu
                if v is not None:
                    parts.append('%g with lines dashtype 2 title "%s (anchor)"' % (v, label))
            script.append("plot " + ", ".join(parts))
        script.append("unset multiplot")
        r = subprocess.run(["gnuplot"], input="\n".join(script), text=True, capture_output=True)
        if r.returncode == 0 and os.path.exists(svg):
            made.append(svg)
        else:
            print("report: gnuplot failed for %s: %s" % (name, r.stderr[-500:]), file=sys.stderr)

    anchors = [(lab, a) for lab, a in (("iperf3 veth", anchor("iperf3_veth_copy")),
                                        ("iperf3 veth -Z", anchor("iperf3_veth_z")),
                                        ("iperf3 dmveth", anchor("iperf3_dmveth"))) if a]
    d1, n1 = series("dmt_chunk", "dmt_chunk")
    d2, n2 = series("iperf3_veth_chunk", "iperf3_chunk")
    if n1 or n2:
        plot("chunk", "chunk size (bytes; devmemtcp --chunk, iperf3 -l)", True,
             [(d1, "devmemtcp devmem over dmveth"), (d2, "iperf3 -l over veth")], [],
             '"4K" 4096, "16K" 16384, "64K" 65536, "256K" 262144, "1M" 1048576')
    d, n = series("dmt_flows", "dmt_flows")
    if n:
        plot("flows", "flows (each on its own dmveth queue)", False, [(d, "devmemtcp devmem, MB/s in all")], anchors,
             "1, 2, 3, 4")
    d, n = series("dmt_rxpage", "dmt_rxpage")
    if n:
        plot("rx-page-size", "bind-rx rx-page-size (bytes; devmemtcp recv --rx-page-size)", True,
             [(d, "devmemtcp send devmem -> ncdevmem")], anchors, '"4K" 4096, "16K" 16384, "64K" 65536')
    shutil.rmtree(dat, ignore_errors=True)
    return made


def main():
    a = sys.argv[1:]
    if len(a) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    raw, out = a[0], a[1]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    duration, do_plots = None, True
    i = 2
    while i < len(a):
        if a[i] == "--stamp":
            stamp, i = a[i + 1], i + 1
        elif a[i] == "--duration":
            duration, i = float(a[i + 1]), i + 1
        elif a[i] == "--no-plots":
            do_plots = False
        i += 1
    recs, traces, info = parse(raw)
    if not recs:
        print("report: no BENCH lines in %s" % raw, file=sys.stderr)
        return 1
    cases = summarize(recs, traces)
    rat = ratios(cases)
    rounds = max([r["round"] for r in recs] + [0]) + 1
    meta = {"rounds": rounds, "quick": os.environ.get("BENCH_QUICK", "0") == "1"}
    os.makedirs(out, exist_ok=True)
    made = plots(cases, out, stamp) if do_plots else []
    doc = {
        "schema": 1,
        "stamp": stamp,
        "duration_s": duration,
        "quick": meta["quick"],
        "rounds": rounds,
        "vm": {"accel": info["accel"], "cpu": info["cpu"], "vcpus": info["vcpus"], "kernel": info["kernel"]},
        "host": {"cores": os.cpu_count(), "kernel": os.uname().release},
        "method": {
            "mbps": "bytes / the sender's wall time (exec to exit, its connect and set-up included), 1e6 bytes per MB",
            "cpu_s_per_gb": "user + system CPU seconds of each end (getrusage RUSAGE_CHILDREN of the process, "
                            "build/bench/runstat) per 1e9 bytes",
            "wakeups_per_mb": "voluntary context switches of each end (ru_nvcsw) per 1e6 bytes",
            "syscalls_per_mb": "every syscall of each end, counted by one extra untimed run per case under "
                               "strace -f -c (smaller bytes; ptrace slows it, so only the count is used); "
                               "null where the strace pass failed or was off (BENCH_STRACE=0)",
            "tool_syscalls_per_mb": "devmemtcp only: the data-path calls the tool counts itself "
                                    "(send: sendmsg; recv: recvmsg + SO_DEVMEM_DONTNEED), both ends",
            "rounds": "every case once per round, the order rotated each round, all in one VM boot",
            "devmemtcp_buffers": "udmabuf, send 16 MiB and recv 64 MiB, on " +
                                 ("4 KiB pages (BENCH_HUGE=0)" if os.environ.get("BENCH_HUGE", "1") == "0"
                                  else "2 MiB huge pages (--hugepages)"),
            "ratios": "ratios of medians; ratio_rounds: the per-round ratios",
        },
        "cases": cases,
        "goals": {k: {"op": op, "goal": g, "what": doc_,
                      "met": (None if rat[k][0] is None else (rat[k][0] >= g if op == ">=" else rat[k][0] <= g))}
                  for k, op, g, doc_ in RATIOS},
        "ratio_rounds": {k: rat[k][1] for k, _, _, _ in RATIOS},
        "plots": [os.path.basename(p) for p in made],
    }
    nd, ni = net_cpu(cases, "dmt_devmem", "dmt_devmem_tiny"), net_cpu(cases, "iperf3_veth_copy", "iperf3_veth_tiny")
    doc["extra"] = {
        "cpu_s_per_gb_net_devmem": nd, "cpu_s_per_gb_net_iperf3_veth": ni,
        "cpu_per_gb_devmem_vs_iperf3_net": div(nd, ni),
        "lib_user_cpu_share_net": net_user_share(cases, "dmt_devmem", "dmt_devmem_tiny"),
        "validate_cost_host_copy": div(med(cases, "host_dmt_copy_v7"), med(cases, "host_dmt_copy")),
        "what": "CPU-s per GB both ends with the fixed costs taken off: (CPU of the big run - CPU of the same "
                "pair with 1 MiB) / (the bytes' difference); the user CPU share likewise (user / all, big run "
                "less the 1 MiB run); medians; validate_cost_host_copy: host loopback, devmemtcp copy "
                "--validate 7 MB/s / without (validation on a real CPU, not TCG)",
    }
    missing = [k for k, _, _, _ in RATIOS if rat[k][0] is None]
    for k, _, _, _ in RATIOS:
        if rat[k][0] is not None:
            doc[k] = rat[k][0]
    if missing:
        doc["missing"] = missing
    for name in ("latest.json", "bench-%s.json" % stamp):
        tmp = os.path.join(out, "." + name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, os.path.join(out, name))
    print(table(cases, rat, info, meta))
    e = doc["extra"]
    if e["cpu_per_gb_devmem_vs_iperf3_net"] is not None:
        print("fixed costs taken off (1 MiB runs): CPU-s/GB both ends devmem %.2f, iperf3 veth %.2f, ratio %.3f" % (
            e["cpu_s_per_gb_net_devmem"], e["cpu_s_per_gb_net_iperf3_veth"], e["cpu_per_gb_devmem_vs_iperf3_net"]))
    if e["lib_user_cpu_share_net"] is not None:
        print("fixed costs taken off (1 MiB runs): devmemtcp user CPU share %.3f" % e["lib_user_cpu_share_net"])
    if e["validate_cost_host_copy"] is not None:
        print("validation on the host (loopback, copy mode, no TCG): validated / unvalidated %.3f" %
              e["validate_cost_host_copy"])
    print("\nwritten: %s/latest.json, bench-%s.json%s" % (out, stamp, "".join(", " + os.path.basename(p) for p in made)))
    if missing:
        print("report: not measured (a case failed in every round): %s" % ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
