#!/usr/bin/python3
"""Compares the cost model with a finished run: per kind, the one-core
estimates `ipsweep run --dry-run` prints against the wall seconds the results
file records for each task (docs/performance.md, "Cost model").

    scripts/cost-check.py RESULTS.h5 DRYRUN.txt

DRYRUN.txt: the output of `ipsweep run SPEC --dry-run` laid out as the run
was (e.g. under the same `mpirun -n`): its per-task estimates are wall times
with the threads each task had, the same clock the results file's
wall_seconds use. Exits 1 when the total differs from the run's by more than
--tolerance (default 0.25)."""
import argparse
import collections
import re
import sys

import h5py

UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def seconds(text):
    if text == "<0.1s":
        return 0.05
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)([dhms])", text):
        total += float(num) * UNITS[unit]
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("dry_run")
    ap.add_argument("--tolerance", type=float, default=0.25)
    a = ap.parse_args()
    line = re.compile(r"^\s+#(\d+)\s+(\S+)\s+est\s+(.+?)\s\s(\S+)")
    est = {}
    with open(a.dry_run) as f:
        for l in f:
            m = line.match(l)
            if m:
                est[m.group(4)] = (m.group(2), seconds(m.group(3).strip()))
    with h5py.File(a.results, "r") as f:
        t = f["tasks"]
        keys = [k.decode() for k in t["key"][:]]
        status = [s.decode() for s in t["status"][:]]
        wall = t["wall_seconds"][:]
    e_sum, w_sum, n = collections.defaultdict(float), collections.defaultdict(float), collections.Counter()
    missing = 0
    for k, s, w in zip(keys, status, wall):
        if s != "done":
            continue
        if k not in est:
            missing += 1
            continue
        kind, e = est[k]
        e_sum[kind] += e
        w_sum[kind] += w
        n[kind] += 1
    if not n:
        print("cost-check: no done task of %s is in %s (is it the dry run of the same spec?)" % (a.results, a.dry_run),
              file=sys.stderr)
        return 2
    print("%-12s %6s %12s %12s %8s" % ("kind", "tasks", "estimate_s", "measured_s", "ratio"))
    for kind in sorted(n, key=lambda k: -w_sum[k]):
        print("%-12s %6d %12.1f %12.1f %8.2f" % (kind, n[kind], e_sum[kind], w_sum[kind],
                                                 e_sum[kind] / w_sum[kind] if w_sum[kind] else float("nan")))
    te, tw = sum(e_sum.values()), sum(w_sum.values())
    print("%-12s %6d %12.1f %12.1f %8.2f" % ("all", sum(n.values()), te, tw, te / tw))
    if missing:
        print("cost-check: %d done tasks of the results file are not in the dry run" % missing, file=sys.stderr)
    return 0 if abs(te / tw - 1) <= a.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
