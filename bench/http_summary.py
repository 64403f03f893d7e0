#!/usr/bin/env python3
"""Turns bench/http.sh's results.tsv into markdown: per load, the median of
each server's figures over the rounds; then ringd's per-round ratios to nginx
(CPU per request, req/s, p99, memory per idle connection) and to the kernel
floor, each beside the goal of issue 7 point 12. Only clean runs (status ok)
count; a ratio needs both of its runs clean in the same round.

usage: http_summary.py RESULTS.TSV [SERVER ...]   (servers in display order)"""

import csv
import statistics
import sys

LOAD_TITLES = {
    "wrk": "wrk -t1 -c50, keep-alive",
    "ab": "ab -c50, a connection per request (HTTP/1.0, server closes)",
    "probe": "ringd-probe --load, keep-alive",
    "probe-churn": "ringd-probe --load --no-keepalive, a connection per request "
                   "(Connection: close, server closes)",
    "idle": "idle keep-alive connections, one request each",
}
KEEPALIVE = ("wrk", "probe")
NEWCONN = ("ab", "probe-churn")
RINGD = ("ringd-uring", "ringd-epoll")


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


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.clean, self.failed, self.by_round = {}, {}, {}
        for r in rows:
            key = (r["load"], r["server"])
            if r["status"] == "ok":
                self.clean.setdefault(key, []).append(r)
                self.by_round[(r["load"], r["round"], r["server"])] = r
            else:
                self.failed.setdefault(key, []).append(r["status"])
        self.loads = list(dict.fromkeys(r["load"] for r in rows))
        self.rounds = sorted({r["round"] for r in rows}, key=int)

    def med(self, load, server, col):
        return median(num(r[col]) for r in self.clean.get((load, server), []))

    def ratios(self, load_a, a, load_b, b, col):
        """Per-round A/B of one column; B may come from another load (the
        floor runs beside ringd-probe's keep-alive load only)."""
        out = []
        for rnd in self.rounds:
            ra = self.by_round.get((load_a, rnd, a))
            rb = self.by_round.get((load_b, rnd, b))
            if not ra or not rb:
                continue
            va, vb = num(ra[col]), num(rb[col])
            if va is not None and vb:
                out.append(va / vb)
        return out


def runs_note(res, load, name):
    good = len(res.clean.get((load, name), []))
    bad = res.failed.get((load, name), [])
    note = f"{good}/{good + len(bad)}"
    if bad:
        note += " (" + ", ".join(sorted(set(bad))) + ")"
    return note


def load_table(res, load, order):
    rounds = sorted({r["round"] for r in res.rows if r["load"] == load}, key=int)
    print(f"## {LOAD_TITLES.get(load, load)} ({len(rounds)} rounds)\n")
    names = [n for n in order if (load, n) in res.clean or (load, n) in res.failed]
    if load == "idle":
        print("| server | bytes per idle connection (VmRSS) | min-max | Pss | "
              "VmRSS before kB | after kB | clean runs |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for name in names:
            runs = res.clean.get((load, name), [])
            mem = [num(r["mem_b_per_conn"]) for r in runs]
            mem = [m for m in mem if m is not None]
            spread = f"{min(mem):.0f}-{max(mem):.0f}" if mem else "-"
            print(f"| {name} | {fmt(median(mem), 0)} | {spread} "
                  f"| {fmt(res.med(load, name, 'pss_b_per_conn'), 0)} "
                  f"| {fmt(res.med(load, name, 'rss0_kb'), 0)} "
                  f"| {fmt(res.med(load, name, 'rss1_kb'), 0)} "
                  f"| {runs_note(res, load, name)} |")
        print()
        return
    print("| server | cpu us/req | cpu min-max | (schedstat) | req/s | p50 us | p99 us | "
          "server busy | load busy | CPU 0 / 1 busy | response B | clean runs |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in names:
        runs = res.clean.get((load, name), [])
        cpu = [num(r["cpu_us_per_req"]) for r in runs]
        cpu = [c for c in cpu if c is not None]
        spread = f"{min(cpu):.2f}-{max(cpu):.2f}" if cpu else "-"
        print(f"| {name} | {fmt(median(cpu), 2)} | {spread} "
              f"| {fmt(res.med(load, name, 'cpu_ns_us_per_req'), 2)} "
              f"| {fmt(res.med(load, name, 'rps'), 0)} "
              f"| {fmt(res.med(load, name, 'p50_us'), 1)} "
              f"| {fmt(res.med(load, name, 'p99_us'), 1)} "
              f"| {fmt(res.med(load, name, 'srv_util'), 2)} "
              f"| {fmt(res.med(load, name, 'lg_util'), 2)} "
              f"| {fmt(res.med(load, name, 'cpu0_busy'), 2)} / "
              f"{fmt(res.med(load, name, 'cpu1_busy'), 2)} "
              f"| {fmt(res.med(load, name, 'resp_bytes'), 0)} "
              f"| {runs_note(res, load, name)} |")
    print()


def verdict(value, goal):
    """goal: ('<=', x) or ('>=', x) or None."""
    if value is None or goal is None:
        return "-"
    op, limit = goal
    ok = value <= limit if op == "<=" else value >= limit
    return "met" if ok else "**missed**"


def ratio_cell(rs):
    if not rs:
        return "-", None
    m = median(rs)
    return f"{m:.2f}x ({min(rs):.2f}-{max(rs):.2f}, n={len(rs)})", m


def goals_table(res, order, peer="nginx"):
    if peer not in order:
        return
    engines = [e for e in RINGD if e in order]
    if not engines:
        return
    rows = []  # (what, load, column, {engine: goal})
    for load in KEEPALIVE:
        rows.append(("CPU per keep-alive request", load, "cpu_us_per_req",
                     {"ringd-uring": ("<=", 0.75), "ringd-epoll": ("<=", 1.0)}))
    for load in KEEPALIVE:
        rows.append(("req/s, keep-alive", load, "rps", {"ringd-uring": (">=", 1.0)}))
    for load in NEWCONN:
        rows.append(("CPU per new connection", load, "cpu_us_per_req",
                     {"ringd-uring": ("<=", 0.8), "ringd-epoll": ("<=", 1.0)}))
    for load in NEWCONN:
        rows.append(("req/s, new connections", load, "rps", {}))
    for load in KEEPALIVE + NEWCONN:
        rows.append(("p99 latency", load, "p99_us", {"ringd-uring": ("<=", 1.0)}))
    rows.append(("memory per idle keep-alive connection", "idle", "mem_b_per_conn",
                 {"ringd-uring": ("<=", 0.75)}))

    if peer == "nginx":
        print("## ringd / nginx against the goals (issue 7 point 12)\n")
    else:
        print(f"## ringd / {peer}\n")
        print("nginx with `listen ... deferred`: the TCP_DEFER_ACCEPT that "
              "ringd's defer_accept sets by default. The issue states its "
              "goals against nginx as configured above; they are repeated "
              "here for comparison.\n")
    print(f"Per-round ratios ringd/{peer} within the same round: median (min-max, "
          "rounds). The goal column applies to the engine named in it.\n")
    head = f"| figure | load | {peer} |"
    rule = "|---|---|---:|"
    for e in engines:
        head += f" {e} | {e} / {peer} | goal | |"
        rule += "---:|---:|---|---|"
    print(head)
    print(rule)
    digits = {"cpu_us_per_req": 2, "rps": 0, "p99_us": 1, "mem_b_per_conn": 0}
    for what, load, col, goals in rows:
        if load not in res.loads:
            continue
        cells = [what, load, fmt(res.med(load, peer, col), digits[col])]
        for e in engines:
            text, m = ratio_cell(res.ratios(load, e, load, peer, col))
            goal = goals.get(e)
            goal_text = f"{goal[0]} {goal[1]:.2f}x" if goal else ""
            cells += [fmt(res.med(load, e, col), digits[col]), text, goal_text,
                      verdict(m, goal) if goal else ""]
        print("| " + " | ".join(cells) + " |")
    print()


def floor_table(res, order):
    if "floor" not in order or ("probe", "floor") not in res.clean:
        return
    fl = res.med("probe", "floor", "cpu_us_per_req")
    print(f"## Against the kernel floor (64-byte echo round trip: "
          f"{fmt(fl, 2)} us per request, median)\n")
    print("Per-round ratios of CPU per keep-alive request to the floor run of "
          "the same round (the floor runs beside ringd-probe's keep-alive load). "
          "Issue 7 expects io_uring at about 1.15x the floor, which is what "
          "0.75x nginx was at nginx's measured 7.0 us.\n")
    print("| server | load | cpu us/req | / floor | goal |")
    print("|---|---|---:|---:|---|")
    for name in order:
        if name == "floor":
            continue
        for load in KEEPALIVE:
            if (load, name) not in res.clean:
                continue
            text, _ = ratio_cell(res.ratios(load, name, "probe", "floor", "cpu_us_per_req"))
            goal = "about 1.15x" if name == "ringd-uring" else ""
            print(f"| {name} | {load} | {fmt(res.med(load, name, 'cpu_us_per_req'), 2)} "
                  f"| {text} | {goal} |")
    print()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    res = Results(rows)
    order = sys.argv[2:] or list(dict.fromkeys(r["server"] for r in rows))
    print("CPU 0 / 1 busy: the whole machine's use of the server's and the load's "
          "CPUs during each run (warm-up included), whoever ran; well above "
          "server busy and load busy, other work shared the CPUs.\n")
    goals_table(res, order)
    goals_table(res, order, "nginx-deferred")
    floor_table(res, order)
    for load in res.loads:
        load_table(res, load, order)


if __name__ == "__main__":
    main()
