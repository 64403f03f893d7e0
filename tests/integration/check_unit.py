#!/usr/bin/env python3
"""ringd.service as configured in the build tree: systemd-analyze verify
passes and `systemd-analyze security --offline=true` rates its exposure
at most 1.5, and the settings ringd depends on are there. Exits 77 (meson:
SKIP) without systemd-analyze.

usage: check_unit.py UNIT INSTALLED_RINGD BUILD_RINGD
verify needs the binary the unit names to exist: it runs on a copy with
INSTALLED_RINGD replaced by BUILD_RINGD, nothing else changed."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

MAX_EXPOSURE = 1.5

# What ringd relies on, beyond what the score counts: readiness and the
# watchdog come from ringd itself, reload is SIGHUP, and a filtered
# io_uring must fail with EPERM so backend = auto falls back to epoll.
REQUIRED = [
    'Type=notify',
    'WatchdogSec=10s',
    'Restart=on-failure',
    'ExecReload=/bin/sh -c \'kill -HUP "$MAINPID"\'',
    'DynamicUser=yes',
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'SystemCallErrorNumber=EPERM',
]


def exposure(unit):
    r = subprocess.run(['systemd-analyze', 'security', '--offline=true', unit],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r'Overall exposure level for \S+: ([0-9.]+)', r.stdout)
    if not m:
        sys.exit('systemd-analyze security printed no exposure (exit %d):\n%s%s'
                 % (r.returncode, r.stdout, r.stderr))
    return float(m.group(1)), r.stdout


def verify(unit, installed, built):
    tmp = tempfile.mkdtemp(prefix='ringd-unit-')
    try:
        copy = os.path.join(tmp, os.path.basename(unit))
        with open(unit) as f, open(copy, 'w') as g:
            g.write(f.read().replace(installed, built))
        r = subprocess.run(['systemd-analyze', 'verify', '--man=no', copy],
                           capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # Other units on the machine may be broken; only ours counts.
    ours = [l for l in (r.stdout + r.stderr).splitlines() if 'ringd' in l]
    return r.returncode, ours


def main():
    unit, installed, built = sys.argv[1:4]
    if shutil.which('systemd-analyze') is None:
        print('SKIP: systemd-analyze not installed')
        sys.exit(77)
    failed = False
    with open(unit) as f:
        lines = [l.strip() for l in f]
    for want in REQUIRED:
        if want not in lines:
            print('FAIL: %s has no line %s' % (unit, want))
            failed = True
    rc, complaints = verify(unit, installed, built)
    if rc != 0 or complaints:
        print('FAIL: systemd-analyze verify exit %d:\n%s' % (rc, '\n'.join(complaints)))
        failed = True
    level, report = exposure(unit)
    print('exposure %.1f (at most %.1f)' % (level, MAX_EXPOSURE))
    if level > MAX_EXPOSURE:
        print('FAIL: exposure %.1f > %.1f:\n%s' % (level, MAX_EXPOSURE, report))
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
