#!/usr/bin/env python3
"""Turns bench/run.sh's results.tsv into markdown: per size, the median of
each server's figures over the rounds, and the per-round ratios of server CPU
per request between every pair of servers. Only clean runs (status ok) count.

usage: summarize.py RESULTS.TSV [SERVER ...]   (servers in display order)"""

import csv
import statistics
import sys


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    order = sys.argv[2:] or list(dict.fromkeys(r["server"] for r in rows))
    sizes = list(dict.fromkeys(r["size"] for r in rows))

    # (size, server) -> list of clean rows; (size, round, server) -> row.
    clean, by_round, failed = {}, {}, {}
    for r in rows:
        key = (r["size"], r["server"])
        if r["status"] == "ok" and num(r["cpu_us_per_req"]) is not None:
            clean.setdefault(key, []).append(r)
            by_round[(r["size"], r["round"], r["server"])] = r
        else:
            failed.setdefault(key, []).append(r["status"])

    print("## Server CPU per request (median, microseconds)\n")
    print("| server | " + " | ".join(f"{s} B" for s in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name in order:
        cells = []
        for size in sizes:
            runs = clean.get((size, name), [])
            cells.append(fmt(median(num(r["cpu_us_per_req"]) for r in runs), 2))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()

    for size in sizes:
        rounds = sorted({int(r["round"]) for r in rows if r["size"] == size})
        print(f"## {size}-byte requests ({len(rounds)} rounds)\n")
        print("| server | cpu us/req | cpu min-max | req/s | p50 us | p99 us | "
              "p99.9 us | server busy | load busy | clean runs |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for name in order:
            runs = clean.get((size, name), [])
            cpu = [num(r["cpu_us_per_req"]) for r in runs]
            bad = failed.get((size, name), [])
            note = f"{len(runs)}/{len(runs) + len(bad)}"
            if bad:
                note += " (" + ", ".join(sorted(set(bad))) + ")"
            spread = f"{min(cpu):.2f}-{max(cpu):.2f}" if cpu else "-"
            print(f"| {name} "
                  f"| {fmt(median(cpu), 2)} "
                  f"| {spread} "
                  f"| {fmt(median(num(r['rps']) for r in runs), 0)} "
                  f"| {fmt(median(num(r['p50_us']) for r in runs), 1)} "
                  f"| {fmt(median(num(r['p99_us']) for r in runs), 1)} "
                  f"| {fmt(median(num(r['p999_us']) for r in runs), 1)} "
                  f"| {fmt(median(num(r['srv_util']) for r in runs), 2)} "
                  f"| {fmt(median(num(r['lg_util']) for r in runs), 2)} "
                  f"| {note} |")
        print()

        print("Per-round ratios (A/B within the same round; median, min-max):\n")
        print("| A / B | cpu us/req | cpu min-max | req/s | rounds |")
        print("|---|---:|---:|---:|---:|")
        for i, a in enumerate(order):
            for b in order[i + 1:]:
                cpu_ratios, rps_ratios = [], []
                for rnd in rounds:
                    ra = by_round.get((size, str(rnd), a))
                    rb = by_round.get((size, str(rnd), b))
                    if not ra or not rb:
                        continue
                    ca, cb = num(ra["cpu_us_per_req"]), num(rb["cpu_us_per_req"])
                    if ca is not None and cb:
                        cpu_ratios.append(ca / cb)
                    pa, pb = num(ra["rps"]), num(rb["rps"])
                    if pa is not None and pb:
                        rps_ratios.append(pa / pb)
                if not cpu_ratios:
                    continue
                print(f"| {a} / {b} "
                      f"| {median(cpu_ratios):.2f} "
                      f"| {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f} "
                      f"| {fmt(median(rps_ratios), 2)} "
                      f"| {len(cpu_ratios)} |")
        print()


if __name__ == "__main__":
    main()
