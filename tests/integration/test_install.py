#!/usr/bin/env python3
"""meson install into a scratch DESTDIR: every file where SPEC.md says,
no @placeholder@ left, the unit pointing at the installed binary and
file, the installed ringd.ini accepted by the installed ringd with the
installed plugins, its qotd default being the installed quotes file, and
every listener of it on loopback and TCP.

usage: test_install.py --meson MESON --build DIR --prefix P --sbindir D
       --bindir D --libdir D --sysconfdir D --datadir D --mandir D --includedir D
       --unitdir D --source DIR
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback

PLUGINS = ('echo', 'time', 'qotd', 'discard', 'chargen', 'http')
LOOPBACK = ('127.0.0.1', '[::1]')


def options():
    ap = argparse.ArgumentParser()
    for name in ('meson', 'build', 'prefix', 'sbindir', 'bindir', 'libdir', 'sysconfdir',
                 'datadir', 'mandir', 'includedir', 'unitdir', 'source'):
        ap.add_argument('--' + name, required=True)
    o = ap.parse_args()
    # meson's rule: a relative directory option is under the prefix.
    for name in ('sbindir', 'bindir', 'libdir', 'sysconfdir', 'datadir', 'mandir',
                 'includedir'):
        setattr(o, name, os.path.join(o.prefix, getattr(o, name)))
    return o


def install(o, dest):
    r = subprocess.run([o.meson, 'install', '-C', o.build, '--no-rebuild', '--quiet',
                        '--destdir', dest], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, 'meson install failed:\n' + r.stdout + r.stderr


def under(dest, path):
    return os.path.join(dest, path.lstrip('/'))


def test_layout(o, dest):
    want = [os.path.join(o.sbindir, 'ringd'),
            os.path.join(o.sysconfdir, 'ringd', 'ringd.ini'),
            os.path.join(o.datadir, 'ringd', 'quotes'),
            os.path.join(o.unitdir, 'ringd.service'),
            os.path.join(o.mandir, 'man8', 'ringd.8'),
            os.path.join(o.mandir, 'man5', 'ringd.ini.5'),
            os.path.join(o.includedir, 'ringd', 'plugin.h')]
    # ringd-probe is a client anyone runs: bindir, not sbindir.
    probe = [os.path.join(o.bindir, 'ringd-probe'),
             os.path.join(o.mandir, 'man1', 'ringd-probe.1')]
    want += [os.path.join(o.libdir, 'ringd', p + '.so') for p in PLUGINS]
    missing = [p for p in want + probe if not os.path.isfile(under(dest, p))]
    assert not missing, 'not installed: %s' % missing
    assert os.access(under(dest, want[0]), os.X_OK), want[0]
    assert os.access(under(dest, probe[0]), os.X_OK), probe[0]
    with open(under(dest, want[2]), 'rb') as f, \
            open(os.path.join(o.source, 'conf', 'quotes'), 'rb') as g:
        assert f.read() == g.read(), 'installed quotes differ from conf/quotes'


def test_placeholders_filled(o, dest):
    for path in (os.path.join(o.sysconfdir, 'ringd', 'ringd.ini'),
                 os.path.join(o.unitdir, 'ringd.service')):
        with open(under(dest, path)) as f:
            text = f.read()
        left = re.findall(r'@[A-Za-z_]+@', text)
        assert not left, '%s: %s left unfilled' % (path, left)


def unit_lines(o, dest, key):
    with open(under(dest, os.path.join(o.unitdir, 'ringd.service'))) as f:
        return [l.split('=', 1)[1] for l in f.read().splitlines()
                if l.startswith(key + '=')]


def test_unit_points_at_install(o, dest):
    ringd = os.path.join(o.sbindir, 'ringd')
    conf = os.path.join(o.sysconfdir, 'ringd', 'ringd.ini')
    assert unit_lines(o, dest, 'ExecStart') == ['%s -c %s' % (ringd, conf)], \
        unit_lines(o, dest, 'ExecStart')
    assert '%s -t -c %s' % (ringd, conf) in unit_lines(o, dest, 'ExecReload')


def test_installed_config_checks(o, dest):
    """The installed ringd, its plugins and its ringd.ini: the one thing
    the DESTDIR cannot give is the quotes file at its final place, so
    either that file exists there already (ringd was installed on this
    machine) or the only error names exactly that path."""
    quotes = os.path.join(o.datadir, 'ringd', 'quotes')
    conf = under(dest, os.path.join(o.sysconfdir, 'ringd', 'ringd.ini'))
    r = subprocess.run([under(dest, os.path.join(o.sbindir, 'ringd')), '-t', '-c', conf,
                        '-s', 'ringd.plugin_dir=' + under(dest, os.path.join(o.libdir, 'ringd'))],
                       capture_output=True, text=True, timeout=30)
    if os.path.isfile(quotes):
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout == conf + ': configuration ok\n', r.stdout
        return
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert re.fullmatch(re.escape(conf) + r':\d+: \[qotd\] quotes: ' + re.escape(quotes) +
                        ': cannot open: No such file or directory', lines[0]), lines[0]


def ini_values(path, key):
    """(section, value) of every key line, as inih reads it: ';' or '#'
    starts a comment at the line's start, ' ;' one inside a line."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = re.split(r'\s;', line, maxsplit=1)[0].strip()
            if not line or line[0] in ';#':
                continue
            if line.startswith('['):
                section = line[1:line.index(']')]
            elif '=' in line:
                k, v = (s.strip() for s in line.split('=', 1))
                if k == key:
                    out.append((section, v))
    return out


def test_installed_config_loopback_tcp(o, dest):
    conf = under(dest, os.path.join(o.sysconfdir, 'ringd', 'ringd.ini'))
    listens = ini_values(conf, 'listen')
    sections = {s for s, _ in listens}
    assert {'echo', 'discard', 'daytime', 'qotd', 'chargen', 'time', 'http'} <= sections, \
        sections
    for section, value in listens:
        for addr in (a.strip() for a in value.split(',')):
            m = re.fullmatch(r'tcp://(\[[^\]]*\]|[^:]+):\d+', addr)
            assert m, '[%s] listen %s: not TCP' % (section, addr)
            assert m.group(1) in LOOPBACK, '[%s] listen %s: not loopback' % (section, addr)
    assert not ini_values(conf, 'quotes'), 'the installed file needs no quotes path'


def main():
    o = options()
    dest = tempfile.mkdtemp(prefix='ringd-install-')
    failed = 0
    try:
        install(o, dest)
        for case in (test_layout, test_placeholders_filled, test_unit_points_at_install,
                     test_installed_config_checks, test_installed_config_loopback_tcp):
            try:
                case(o, dest)
            except Exception:
                failed += 1
                print('FAIL %s' % case.__name__)
                traceback.print_exc(file=sys.stdout)
            else:
                print('ok   %s' % case.__name__)
    finally:
        shutil.rmtree(dest, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
