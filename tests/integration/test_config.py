#!/usr/bin/env python3
"""Configuration and start-up errors as the operator sees them: -t, FILE:LINE
messages, exit statuses, ports in use, bind permission."""

import os
import re
import socket

import harness


def _write(ctx, text, name='ringd.ini'):
    path = os.path.join(ctx.tempdir(), name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def _core(ctx):
    return '[ringd]\nbackend = %s\nworkers = 1\n' % (
        'auto' if ctx.backend == 'auto-no-uring' else ctx.backend)


def test_check_good_file(ctx):
    # -t binds nothing: a port we hold ourselves must not make it fail.
    hold = socket.socket()
    hold.bind(('127.0.0.1', 0))
    hold.listen(1)
    port = hold.getsockname()[1]
    path = _write(ctx, _core(ctx) + 'allow = 127.0.0.0/8, ::1\nmax_buffered = 1g\n'
                  'max_connections_per_source = 4\n'
                  '\n[echo]\nlisten = tcp://127.0.0.1:%d, udp://127.0.0.1:0\n'
                  'idle_timeout = 60s\ndeny = 10.0.0.0/8 ::ffff:192.0.2.0/120\n' % port)
    r = ctx.run(['-c', path, '-t'])
    out = r.stdout + r.stderr
    assert r.returncode == 0, 'exit %d:\n%s' % (r.returncode, out)
    assert '%s: configuration ok' % path in out, out
    hold.close()


def test_check_shipped_example(ctx):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'conf', 'ringd.ini')
    if not os.path.exists(src):
        raise harness.Skip('conf/ringd.ini not present')
    r = ctx.run(['-c', src, '-t'])
    out = r.stdout + r.stderr
    assert r.returncode == 0 and 'configuration ok' in out, (r.returncode, out)


# (text, [(line, words that must appear on that FILE:LINE message)])
BAD = [
    ('backend value', '[ringd]\nbackend = kqueue\n[echo]\nlisten = tcp://127.0.0.1:0\n',
     [(2, ['backend'])]),
    ('unknown core key', '[ringd]\nworkers = 1\nbogus_key = 1\n[echo]\nlisten = tcp://127.0.0.1:0\n',
     [(3, ['bogus_key'])]),
    ('unknown service key', '[ringd]\n[echo]\nlisten = tcp://127.0.0.1:0\nflavour = vanilla\n',
     [(4, ['flavour'])]),
    ('workers out of range', '[ringd]\nworkers = 0\n[echo]\nlisten = tcp://127.0.0.1:0\n',
     [(2, ['workers'])]),
    ('workers not a number', '[ringd]\nworkers = lots\n[echo]\nlisten = tcp://127.0.0.1:0\n',
     [(2, ['workers'])]),
    ('bad duration', '[ringd]\nshutdown_timeout = soon\n[echo]\nlisten = tcp://127.0.0.1:0\n',
     [(2, ['shutdown_timeout'])]),
    ('port out of range', '[ringd]\n[echo]\nlisten = tcp://127.0.0.1:70000\n',
     [(3, ['listen'])]),
    ('bad scheme', '[ringd]\n[echo]\nlisten = sctp://127.0.0.1:7\n',
     [(3, ['listen'])]),
    ('bad address', '[ringd]\n[echo]\nlisten = tcp://not-an-address:7\n',
     [(3, ['listen'])]),
    ('duplicate key', '[ringd]\n[echo]\nlisten = tcp://127.0.0.1:0\nidle_timeout = 5s\n'
     'idle_timeout = 6s\n', [(5, ['idle_timeout'])]),
    ('syntax error', '[ringd]\nworkers = 1\nthis line is not ini\n[echo]\nlisten = tcp://127.0.0.1:0\n',
     [(3, [])]),
    ('unknown plugin', '[ringd]\n\n[nosuch]\nlisten = tcp://127.0.0.1:0\n',
     [(3, ['nosuch'])]),
    ('unknown plugin named by plugin=', '[ringd]\n[svc]\nplugin = nosuchplugin\n'
     'listen = tcp://127.0.0.1:0\n', [(3, ['nosuchplugin'])]),
    ('bad socket_mode', '[ringd]\n[echo]\nlisten = unix:/tmp/ringd-it-never.sock\n'
     'socket_mode = 0999\n', [(4, ['socket_mode'])]),
    ('several errors all reported', '[ringd]\nbackend = nope\nworkers = -3\n[echo]\n'
     'listen = tcp://127.0.0.1:0\nwhat = ever\n', [(2, ['backend']), (3, ['workers']),
                                                (6, ['what'])]),
    ('no colon after the IPv6 brackets', '[ringd]\n[echo]\nlisten = tcp://[::1]7\n',
     [(3, ["expected ':' after ']'"])]),
    # A refused plugin line is its own error (not "out of memory") and
    # the rest of the section is still checked.
    ('plugin line with a NUL byte', '[ringd]\n[echo]\nplugin = ec\0ho\n'
     'listen = tcp://127.0.0.1:99999\n', [(3, ['NUL byte']), (4, ['listen'])]),
    # Every bad allow/deny item is its own error, in [ringd] and in a
    # service; a service inheriting [ringd]'s does not repeat them.
    ('bad allow and deny items', '[ringd]\nallow = 10.0.0.0/33, localhost,\n'
     '[echo]\nlisten = tcp://127.0.0.1:0\ndeny = 10.0.0.1/8 , , ::/129\n'
     'max_connections_per_source = -1\n',
     [(2, ["'10.0.0.0/33'", 'past 32']), (2, ["'localhost'", 'host names']),
      (2, ['trailing comma']), (5, ["'10.0.0.1/8'", 'host bits']),
      (5, ['empty item']), (5, ["'::/129'", 'past 128']),
      (6, ['max_connections_per_source'])]),
    ('max_buffered below its bound', '[ringd]\nmax_buffered = 1k\n[echo]\n'
     'listen = tcp://127.0.0.1:0\n', [(2, ['max_buffered', '64k..1t'])]),
    # A plugin's own check() runs even when another key of its section is
    # wrong, so the operator sees every error in one pass.
    ('plugin check beside a core key error', '[ringd]\n[qotd]\n'
     'listen = tcp://localhost:0\nquotes = /nonexistent/ringd-quotes\n'
     '[chargen]\nlisten = udp://127.0.0.1:0\nmax_bytes = 1x\n',
     [(3, ['listen']), (4, ['quotes', 'cannot open']), (7, ['max_bytes'])]),
]


def _check_errors(path, out, expected, what):
    for line, words in expected:
        pat = re.compile(r'^%s:%d: .*$' % (re.escape(path), line), re.M)
        hits = pat.findall(out)
        assert hits, '%s: no "%s:%d:" message in:\n%s' % (what, path, line, out)
        for w in words:
            assert any(w in h for h in hits), '%s: %s:%d message lacks %r:\n%s' % (
                what, path, line, w, out)


def test_bad_configs_check_mode(ctx):
    for what, text, expected in BAD:
        path = _write(ctx, text)
        r = ctx.run(['-c', path, '-t'])
        out = r.stdout + r.stderr
        assert r.returncode == 1, '%s: -t exit %d, expected 1:\n%s' % (what, r.returncode, out)
        _check_errors(path, out, expected, what)
        assert 'configuration ok' not in out, what
        assert 'out of memory' not in out, what


def test_bad_configs_at_start(ctx):
    """The same errors when starting for real: exit 1, FILE:LINE, never READY."""
    for what, text, expected in BAD:
        d = ctx.daemon(ini=text, expect_ready=False)
        rc = d.run_to_exit()
        err = d.stderr()
        assert rc == 1, '%s: exit %s, expected 1:\n%s' % (what, rc, err)
        _check_errors(d.conf, err, expected, what)
        assert not any('READY=1' in m for m in d.messages), '%s: sent READY=1' % what


def test_missing_config_file(ctx):
    path = os.path.join(ctx.tempdir(), 'absent.ini')
    r = ctx.run(['-c', path])
    out = r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, out)
    assert path in out, out


def test_config_not_a_regular_file(ctx):
    # A FIFO must not block -t in open(), nor /dev/zero be read forever.
    fifo = os.path.join(ctx.tempdir(), 'fifo.ini')
    os.mkfifo(fifo)
    for path in (fifo, '/dev/zero'):
        r = ctx.run(['-c', path, '-t'], timeout=10)
        out = r.stdout + r.stderr
        assert r.returncode == 1, (path, r.returncode, out)
        assert '%s: not a regular file' % path in out, out


def test_set_control_characters_escaped(ctx):
    path = _write(ctx, _core(ctx) + '[echo]\nlisten = tcp://127.0.0.1:0\n')
    r = ctx.run(['-c', path, '-t', '-s', 'echo.idle_timeout=\x1b[2J'])
    out = r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, out)
    assert '\x1b' not in out and '-s echo.idle_timeout=?[2J' in out, repr(out)


def test_usage_errors(ctx):
    for args in (['--no-such-option'], ['-c'], ['-Z']):
        r = ctx.run(args)
        assert r.returncode == 2, '%r: exit %d, expected 2:\n%s%s' % (
            args, r.returncode, r.stdout, r.stderr)
    r = ctx.run(['-h'])
    assert r.returncode == 0 and '-c' in (r.stdout + r.stderr), (r.returncode, r.stdout, r.stderr)


def test_set_bad_value_names_it(ctx):
    path = _write(ctx, _core(ctx) + '[echo]\nlisten = tcp://127.0.0.1:0\n')
    r = ctx.run(['-c', path, '-t', '-s', 'ringd.workers=zero'])
    out = r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, out)
    assert 'workers' in out, out


def _port_in_use(ctx, kind):
    stype = socket.SOCK_STREAM if kind == 'tcp' else socket.SOCK_DGRAM
    hold = socket.socket(socket.AF_INET, stype)
    hold.bind(('127.0.0.1', 0))
    if kind == 'tcp':
        hold.listen(1)
    port = hold.getsockname()[1]
    # A first listener that does bind, then the one in use: nothing may stay bound.
    ini = ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:0, %s://127.0.0.1:%d' % (kind, port)}})
    d = ctx.daemon(ini=ini, expect_ready=False)
    rc = d.run_to_exit()
    err = d.stderr()
    assert rc == 1, 'exit %s with %s port %d in use:\n%s' % (rc, kind, port, err)
    lines = [l for l in err.splitlines() if '127.0.0.1:%d' % port in l]
    assert lines, 'no line names 127.0.0.1:%d:\n%s' % (port, err)
    assert any('echo' in l for l in lines), 'the line does not name the service:\n' + err
    assert any('in use' in l.lower() for l in lines), 'the line does not say why:\n' + err
    assert not any('READY=1' in m for m in d.messages), 'READY=1 despite the bind failure'
    hold.close()


def test_tcp_port_in_use(ctx):
    _port_in_use(ctx, 'tcp')


def test_udp_port_in_use(ctx):
    _port_in_use(ctx, 'udp')


def test_bind_permission_denied(ctx):
    """Unprivileged, port 7 is refused: one line naming service and address."""
    with open('/proc/sys/net/ipv4/ip_unprivileged_port_start') as f:
        if int(f.read()) <= 7:
            raise harness.Skip('unprivileged ports start at or below 7 here')
    if os.geteuid() != 0:
        uid = None
    else:
        uid = 65534

    def drop():
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
    ini = ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:7'}})
    d = ctx.daemon(ini=ini, expect_ready=False, preexec=drop, start=False)
    for p in (d.dir,):
        os.chmod(p, 0o755)
    os.chmod(d.conf, 0o644)
    d.start()
    rc = d.run_to_exit()
    err = d.stderr()
    if 'ringd.ini' in err and 'ermission denied' in err and '127.0.0.1:7' not in err:
        raise harness.Skip('nobody cannot read the build tree here:\n' + err)
    assert rc == 1, 'exit %s:\n%s' % (rc, err)
    lines = [l for l in err.splitlines() if '127.0.0.1:7' in l]
    assert lines and any('echo' in l and 'ermission denied' in l for l in lines), \
        'expected one line naming echo, 127.0.0.1:7 and "Permission denied":\n' + err


if __name__ == '__main__':
    harness.main([
        test_check_good_file,
        test_check_shipped_example,
        test_bad_configs_check_mode,
        test_bad_configs_at_start,
        test_missing_config_file,
        test_config_not_a_regular_file,
        test_set_control_characters_escaped,
        test_usage_errors,
        test_set_bad_value_names_it,
        test_tcp_port_in_use,
        test_udp_port_in_use,
        test_bind_permission_denied,
    ])
