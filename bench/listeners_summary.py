#!/usr/bin/env python3
"""Turns bench/listeners.sh's results.tsv into markdown: per placement, the
median figures of each (engine, workload, listener mode) over its runs, how
evenly the two workers shared the CPU, and the per-pair ratios
reuseport / shared. Only clean runs (status ok) count.

usage: listeners_summary.py RESULTS.TSV"""

import csv
import sys

# The same parsing and formatting as run.sh's tables.
from summarize import fmt, median, num

MODES = ("shared", "reuseport")


def busier_share(row):
    """The busier worker's share of the two workers' CPU: 0.50 is an even
    split, 1.00 means one worker did everything."""
    w0, w1 = num(row["w0_ticks"]), num(row["w1_ticks"])
    if w0 is None or w1 is None or w0 + w1 <= 0:
        return None
    return max(w0, w1) / (w0 + w1)


def spread(values, digits):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def cell_table(rows, placement, cells):
    print(f"### {placement}\n")
    print("| engine | workload | listeners | req/s (conn/s) | cpu us/req | cpu min-max "
          "| p50 us | p99 us | busier worker | its range | server busy | load busy "
          "| errors | clean runs |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for engine, workload in cells:
        for mode in MODES:
            mine = [r for r in rows if (r["placement"], r["engine"], r["workload"],
                                        r["mode"]) == (placement, engine, workload, mode)]
            runs = [r for r in mine if r["status"] == "ok"]
            bad = sorted({r["status"] for r in mine if r["status"] != "ok"})
            cpu = [num(r["cpu_us_per_req"]) for r in runs]
            share = [busier_share(r) for r in runs]
            note = f"{len(runs)}/{len(mine)}" + (f" ({', '.join(bad)})" if bad else "")
            errs = sum(int(num(r["errors"]) or 0) for r in mine)
            print(f"| {engine} | {workload} | {mode} "
                  f"| {fmt(median(num(r['rps']) for r in runs), 0)} "
                  f"| {fmt(median(cpu), 2)} | {spread(cpu, 2)} "
                  f"| {fmt(median(num(r['p50_us']) for r in runs), 0)} "
                  f"| {fmt(median(num(r['p99_us']) for r in runs), 0)} "
                  f"| {fmt(median(share), 2)} | {spread(share, 2)} "
                  f"| {fmt(median(num(r['srv_util']) for r in runs), 2)} "
                  f"| {fmt(median(num(r['lg_util']) for r in runs), 2)} "
                  f"| {errs} | {note} |")
    print()


def ratio_table(rows, placement, cells):
    print(f"Per-pair ratios reuseport / shared, {placement} (median, min-max):\n")
    print("| engine | workload | cpu us/req | cpu min-max | req/s | req/s min-max "
          "| p99 | pairs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for engine, workload in cells:
        pairs = {}
        for r in rows:
            if (r["placement"], r["engine"], r["workload"]) == (placement, engine, workload) \
                    and r["status"] == "ok":
                pairs.setdefault(r["pair"], {})[r["mode"]] = r
        ratios = {"cpu_us_per_req": [], "rps": [], "p99_us": []}
        for pair in pairs.values():
            if set(pair) != set(MODES):
                continue
            for key, out in ratios.items():
                a, b = num(pair["reuseport"][key]), num(pair["shared"][key])
                if a is not None and b:
                    out.append(a / b)
        cpu, rps, p99 = ratios["cpu_us_per_req"], ratios["rps"], ratios["p99_us"]
        print(f"| {engine} | {workload} | {fmt(median(cpu), 2)} | {spread(cpu, 2)} "
              f"| {fmt(median(rps), 2)} | {spread(rps, 2)} | {fmt(median(p99), 2)} "
              f"| {len(cpu)} |")
    print()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for placement in dict.fromkeys(r["placement"] for r in rows):
        cells = list(dict.fromkeys((r["engine"], r["workload"]) for r in rows
                                   if r["placement"] == placement))
        cell_table(rows, placement, cells)
        ratio_table(rows, placement, cells)


if __name__ == "__main__":
    main()
