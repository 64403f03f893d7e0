#!/usr/bin/env python3
"""Reads one wrk or ab log and prints its figures as key=value words, the
fields bench/http.sh puts into results.tsv:

  reqs=N rps=R p50_us=X p99_us=Y errors=E window_s=S

usage: http_parse.py wrk LOG
       http_parse.py ab LOG CSV     (CSV: the file ab wrote with -e)

errors counts every request or connection the tool did not count as a
good response: wrk's socket errors, non-2xx/3xx responses; ab's failed
requests, non-2xx responses and write errors. Exits 1 if the log has no
result."""

import re
import sys

UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def wrk_time_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"wrk: cannot read the time {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(log):
    out = {}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m),", log, re.M)
    if not m:
        return None
    out["reqs"] = int(m.group(1))
    out["window_s"] = float(m.group(2)) * UNITS[m.group(3)] / 1e6
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", log, re.M)
    out["rps"] = float(m.group(1)) if m else out["reqs"] / out["window_s"]
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", log, re.M)
        out[key] = wrk_time_us(m.group(1)) if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", log)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", log)
    if m:
        errors += int(m.group(1))
    out["errors"] = errors
    return out


def parse_ab(log, csv_path):
    out = {}
    m = re.search(r"^Complete requests:\s*(\d+)", log, re.M)
    if not m:
        return None
    complete = int(m.group(1))
    m = re.search(r"^Time taken for tests:\s*([0-9.]+) seconds", log, re.M)
    out["window_s"] = float(m.group(1))
    m = re.search(r"^Requests per second:\s*([0-9.]+)", log, re.M)
    out["rps"] = float(m.group(1))
    errors = 0
    for pat in (r"^Failed requests:\s*(\d+)", r"^Non-2xx responses:\s*(\d+)",
                r"^Write errors:\s*(\d+)"):
        m = re.search(pat, log, re.M)
        if m:
            errors += int(m.group(1))
    out["errors"] = errors
    out["reqs"] = complete - errors
    # ab prints whole milliseconds in its table; the -e CSV has them to the
    # microsecond ("99,1.234"), so take the percentiles from there.
    pcts = {}
    try:
        with open(csv_path) as f:
            for line in f:
                k, _, v = line.strip().partition(",")
                if k.isdigit():
                    pcts[int(k)] = float(v) * 1e3
    except OSError:
        pass
    for pct, key in ((50, "p50_us"), (99, "p99_us")):
        if pct in pcts:
            out[key] = pcts[pct]
        else:
            m = re.search(rf"^\s*{pct}%\s+(\d+)", log, re.M)
            out[key] = float(m.group(1)) * 1e3 if m else None
    return out


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("wrk", "ab"):
        sys.exit(__doc__)
    with open(sys.argv[2], errors="replace") as f:
        log = f.read()
    if sys.argv[1] == "wrk":
        out = parse_wrk(log)
    else:
        out = parse_ab(log, sys.argv[3] if len(sys.argv) > 3 else "")
    if out is None:
        sys.exit(1)
    words = []
    for key in ("reqs", "rps", "p50_us", "p99_us", "errors", "window_s"):
        v = out.get(key)
        if v is None:
            words.append(f"{key}=NA")
        elif isinstance(v, int):
            words.append(f"{key}={v}")
        else:
            words.append(f"{key}={v:.3f}" if key == "window_s" else f"{key}={v:.1f}")
    print(" ".join(words))


if __name__ == "__main__":
    main()
