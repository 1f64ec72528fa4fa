#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run a kernel Python selftest with its framework's waits scaled.

Usage: ksft-scaled.py FACTOR SCRIPT [ARG...]

The net selftest library (tools/testing/selftests/net/lib/py) waits with
fixed defaults: 5 s for a port to listen, 20 s for a command or a
background process to end, 1 s for ksft_busy_wait.  Those fit a machine
with KVM; under TCG with KASAN, lockdep and kmemleak the same steps take
ten times as long, and every check fails on a wait, not on what it checks.

This imports the test's own library, multiplies every numeric default of a
parameter named "timeout" or "deadline" in it by FACTOR, then runs SCRIPT
as __main__.  The checks themselves are not touched.  FACTOR 1 runs the
test unchanged.

It also seeds Python's random module, which some of these tests draw their
inputs from (RSS keys, queues, thresholds), and prints the seed: KSFT_SEED=N
runs the same draws again; unset or empty, a seed is drawn from os.urandom.
"""

import inspect
import os
import random
import runpy
import sys


def scale_defaults(func, factor, done):
    """Multiply func's numeric timeout/deadline defaults; return how many."""
    func = inspect.unwrap(func)
    if not inspect.isfunction(func) or func in done:
        return 0
    done.add(func)
    params = list(inspect.signature(func).parameters.values())
    with_default = [p for p in params
                    if p.default is not inspect.Parameter.empty
                    and p.kind != inspect.Parameter.KEYWORD_ONLY]
    count = 0
    if func.__defaults__:
        new = list(func.__defaults__)
        for i, p in enumerate(with_default):
            if p.name in ("timeout", "deadline") and \
               isinstance(p.default, (int, float)) and \
               not isinstance(p.default, bool):
                new[i] = p.default * factor
                count += 1
        func.__defaults__ = tuple(new)
    kw = dict(func.__kwdefaults__ or {})
    for name in ("timeout", "deadline"):
        if isinstance(kw.get(name), (int, float)) and \
           not isinstance(kw[name], bool):
            kw[name] *= factor
            count += 1
    if kw:
        func.__kwdefaults__ = kw
    return count


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: ksft-scaled.py FACTOR SCRIPT [ARG...]")
    factor = float(sys.argv[1])
    script = os.path.abspath(sys.argv[2])
    here = os.path.dirname(script)
    sys.argv = sys.argv[2:]
    sys.path.insert(0, here)
    os.chdir(here)

    seed = os.environ.get("KSFT_SEED", "")
    if seed == "":
        seed = str(int.from_bytes(os.urandom(4), "big"))
    elif not (seed.isascii() and seed.isdigit()):
        sys.exit(f"ksft-scaled: KSFT_SEED={seed!r} is not a number "
                 "(fix: a non-negative integer, or unset for a fresh one)")
    random.seed(int(seed))
    print(f"# ksft-scaled: random.seed({seed}) (KSFT_SEED={seed} repeats "
          "this run's draws)", flush=True)

    if factor != 1:
        import lib.py  # noqa: F401  the test's own library, as it imports it
        ksft = os.path.realpath(os.path.join(here, "../../../.."))
        done = set()
        count = 0
        for mod in list(sys.modules.values()):
            path = os.path.realpath(getattr(mod, "__file__", None) or "/")
            if not path.startswith(ksft + os.sep):
                continue
            for _, obj in inspect.getmembers(mod):
                if inspect.isfunction(obj):
                    count += scale_defaults(obj, factor, done)
                elif inspect.isclass(obj):
                    for _, meth in inspect.getmembers(obj, inspect.isfunction):
                        count += scale_defaults(meth, factor, done)
        if count == 0:
            sys.exit("ksft-scaled: no timeout/deadline defaults found to scale")
        print(f"# ksft-scaled: {count} timeout/deadline defaults x{factor:g}",
              flush=True)

    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
