#!/usr/bin/env python3
"""time (RFC 868) and daytime (RFC 867) against clients nobody here wrote:
rdate, check_time, nc and socat; libfaketime across the 2036 wrap; input
that must not delay the reply; require_synced_clock against the kernel's
own view of the clock. A client that is not installed skips its case only."""

import calendar
import ctypes
import glob
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import harness
from harness import connect, recv_until_eof

RFC868_OFFSET = 2208988800
SLACK = 2.0  # seconds a reply may differ from the local clock
CHECK_TIME = '/usr/lib/nagios/plugins/check_time'
LISTEN = 'tcp://127.0.0.1:0, udp://127.0.0.1:0'
DAYTIME_FMT = '%A, %B %d, %Y %H:%M:%S-UTC'


def services(**extra):
    """A time and a daytime instance, both on TCP and UDP."""
    out = {'time': {'plugin': 'time', 'format': 'time', 'listen': LISTEN},
           'daytime': {'plugin': 'time', 'format': 'daytime', 'listen': LISTEN}}
    for svc in out.values():
        svc.update(extra)
    return out


def need(prog):
    path = shutil.which(prog) or (prog if os.access(prog, os.X_OK) else None)
    if path is None:
        raise harness.Skip('%s is not installed (Debian: %s)' % (
            prog, {'rdate': 'rdate', CHECK_TIME: 'monitoring-plugins-basic',
                   'nc': 'netcat-openbsd', 'socat': 'socat'}.get(prog, prog)))
    return path


def decode868(data):
    assert len(data) == 4, 'RFC 868 reply of %d bytes: %r' % (len(data), data)
    return struct.unpack('>I', data)[0]


def assert_near(got_unix, before, after, what):
    """got_unix (whole seconds) lies within SLACK of [before, after]."""
    if not (before - SLACK <= got_unix <= after + SLACK):
        raise AssertionError('%s says %s, local clock was %.1f..%.1f' % (
            what, time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(got_unix)),
            before, after))


def assert_868_near(data, before, after, what):
    """Unwrapped into the era of the local clock, as RFC 868 clients do."""
    v = decode868(data)
    era = (int(before) + RFC868_OFFSET) >> 32
    unix = (era << 32) + v - RFC868_OFFSET
    assert_near(unix, before, after, what)


def tcp_read_all(addr, timeout=5.0):
    s = connect(addr, timeout)
    try:
        return recv_until_eof(s, limit=4096, deadline=time.monotonic() + timeout)
    finally:
        s.close()


def udp_ask(addr, data=b'\n', timeout=2.0):
    """The reply to one datagram, or None when none came within timeout."""
    s = harness.client_socket(addr.family, socket.SOCK_DGRAM, ('::1' if addr.family == socket.AF_INET6 else '127.0.0.1', 0))
    try:
        s.settimeout(timeout)
        s.sendto(data, addr.sockaddr)
        try:
            return s.recvfrom(4096)[0]
        except socket.timeout:
            return None
    finally:
        s.close()


def parse_daytime(data, what):
    """One printable line ending in CRLF, in the default format; unix time."""
    assert data.endswith(b'\r\n'), '%s: no CRLF at the end: %r' % (what, data)
    text = data[:-2]
    assert all(0x20 <= b <= 0x7e for b in text), '%s: not printable: %r' % (what, data)
    return calendar.timegm(time.strptime(text.decode(), DAYTIME_FMT))


# -- cases -------------------------------------------------------------------

def test_time_python_tcp_udp(ctx):
    """The baseline without outside clients: 4 bytes then EOF; 4 bytes per
    datagram, whatever the datagram holds."""
    d = ctx.daemon(services())
    t, u = d.addr('tcp', 'time'), d.addr('udp', 'time')
    before = time.time()
    data = tcp_read_all(t)
    assert_868_near(data, before, time.time(), 'TCP time')
    for payload in (b'', b'x', b'\0' * 500):
        before = time.time()
        data = udp_ask(u, payload)
        assert data is not None, 'no reply to a datagram of %d bytes' % len(payload)
        assert_868_near(data, before, time.time(), 'UDP time')
    d.stop()


def _rdate_time(args):
    """Runs rdate -p (print, do not set) and returns the time it printed."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=15,
                       env=dict(os.environ, TZ='UTC'))
    out = r.stdout + r.stderr
    assert r.returncode == 0, '%s exited %d: %s' % (' '.join(args), r.returncode, out)
    m = re.search(r'(\w{3}) +(\w{3}) +(\d+) +(\d\d:\d\d:\d\d) +(?:UTC +)?(\d{4})', out)
    assert m, 'cannot find a date in rdate output %r' % out
    return calendar.timegm(time.strptime(' '.join(m.groups()[1:]), '%b %d %H:%M:%S %Y'))


def test_rdate_tcp_udp(ctx):
    rdate = need('rdate')
    d = ctx.daemon(services())
    port = d.addr('tcp', 'time').port
    for args in ([rdate, '-p', '-o', str(port), '127.0.0.1'],
                 [rdate, '-p', '-u', '-o', str(d.addr('udp', 'time').port), '127.0.0.1']):
        before = time.time()
        got = _rdate_time(args)
        assert_near(got, before, time.time(), ' '.join(args))
    d.stop()


def test_check_time_tcp_udp(ctx):
    check = need(CHECK_TIME)
    d = ctx.daemon(services())
    # Warn from a 2 s difference: OK means the time is right, not just sent.
    for extra, scheme in (([], 'tcp'), (['-u'], 'udp')):
        args = [check, '-H', '127.0.0.1', '-p', str(d.addr(scheme, 'time').port),
                '-w', '2', '-c', '10', '-t', '10'] + extra
        r = subprocess.run(args, capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and r.stdout.startswith('TIME OK'), \
            '%s exited %d: %s%s' % (' '.join(args), r.returncode, r.stdout, r.stderr)
    d.stop()


def _faketime_lib():
    libs = sorted(glob.glob('/usr/lib/*/faketime/libfaketimeMT.so.1') +
                  glob.glob('/usr/lib/faketime/libfaketimeMT.so.1'))
    if not libs:
        raise harness.Skip('libfaketime is not installed (Debian: faketime)')
    return libs[0]


def _faketime_case(ctx, lib, start):
    """A daemon whose clock starts at start (UTC, then ticks); what its
    time service says over TCP and UDP, and how far its clock can have run."""
    env = {'LD_PRELOAD': lib, 'FAKETIME': '@' + start, 'TZ': 'UTC',
           # Timers stay on the real monotonic clock.
           'FAKETIME_DONT_FAKE_MONOTONIC': '1',
           # ASan builds: the preloaded library comes before libasan.
           'ASAN_OPTIONS': 'verify_asan_link_order=0'}
    t0 = time.monotonic()
    d = ctx.daemon(services(), env=env)
    got = [decode868(tcp_read_all(d.addr('tcp', 'time'))),
           decode868(udp_ask(d.addr('udp', 'time')) or b'')]
    line = tcp_read_all(d.addr('tcp', 'daytime'))
    ran = time.monotonic() - t0
    d.stop()
    return got, line, ran


def test_faketime_2036_wrap(ctx):
    """The last seconds of era 0 and the first of era 1 (2036-02-07
    06:28:16 UTC is 2^32 seconds after 1900)."""
    lib = _faketime_lib()
    for start in ('2036-02-07 06:28:10', '2036-02-07 06:28:20'):
        got, line, ran = _faketime_case(ctx, lib, start)
        base = calendar.timegm(time.strptime(start, '%Y-%m-%d %H:%M:%S'))
        allowed = {(base + RFC868_OFFSET + k) % (1 << 32)
                   for k in range(0, int(ran + SLACK) + 1)}
        for v, how in zip(got, ('TCP', 'UDP')):
            assert v in allowed, '%s under faketime %s: 0x%08X, expected 0x%08X..0x%08X' % (
                how, start, v, min(allowed), max(allowed))
        # The text service has no wrap: it says 2036.
        when = parse_daytime(line, 'daytime under faketime')
        assert base <= when <= base + ran + SLACK, (start, line)


def _nc_daytime(nc, port):
    return subprocess.run([nc, '-w', '5', '127.0.0.1', str(port)],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=15).stdout


def _socat_daytime(socat, port):
    return subprocess.run([socat, '-u', 'TCP:127.0.0.1:%d' % port, 'STDOUT'],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=15).stdout


def test_daytime_nc_socat(ctx):
    clients = [(name, shutil.which(name)) for name in ('nc', 'socat')]
    clients = [(n, p) for n, p in clients if p]
    if not clients:
        raise harness.Skip('neither nc (netcat-openbsd) nor socat is installed')
    d = ctx.daemon(services())
    port = d.addr('tcp', 'daytime').port
    for name, path in clients:
        before = time.time()
        data = (_nc_daytime if name == 'nc' else _socat_daytime)(path, port)
        after = time.time()
        assert data.count(b'\n') == 1, '%s got %r' % (name, data)
        assert_near(parse_daytime(data, name), before, after, name)
    d.stop()


def test_daytime_udp(ctx):
    d = ctx.daemon(services())
    u = d.addr('udp', 'daytime')
    for payload in (b'', b'what time is it?\r\n'):
        before = time.time()
        data = udp_ask(u, payload)
        assert data is not None, 'no daytime reply to %r' % payload
        assert data.count(b'\n') == 1 and len(data) < 512, data
        assert_near(parse_daytime(data, 'UDP daytime'), before, time.time(), 'UDP daytime')
    d.stop()


def test_daytime_local_zone(ctx):
    """timezone = local follows the daemon's TZ; a POSIX zone needs no tzdata."""
    svc = services(timezone='local')
    d = ctx.daemon(svc, env={'TZ': 'ABC+5'})
    line = tcp_read_all(d.addr('tcp', 'daytime'))
    assert line.endswith(b'-ABC\r\n'), line
    now = time.time()
    text = line[:-len(b'-ABC\r\n')].decode()
    local = calendar.timegm(time.strptime(text, '%A, %B %d, %Y %H:%M:%S'))
    assert_near(local + 5 * 3600, now - 5, now, 'local daytime')
    d.stop()


def test_input_ignored_reply_not_delayed(ctx):
    """Bytes sent first neither delay the reply nor turn the close into a
    reset: the daemon sends, shuts down its side, and drains what comes."""
    d = ctx.daemon(services())
    junk = b'GET / HTTP/1.0\r\n' * 4096
    for svc, check in (('time', decode868), ('daytime', lambda b: parse_daytime(b, svc))):
        s = connect(d.addr('tcp', svc))
        s.sendall(junk)
        t0 = time.monotonic()
        data = recv_until_eof(s, limit=4096, deadline=t0 + 5)
        took = time.monotonic() - t0
        check(data)
        assert took < 1.0, '%s: reply and EOF took %.2f s' % (svc, took)
        # After its FIN the daemon keeps reading, so more input is no error.
        err = []
        w = threading.Thread(target=lambda: _send_quietly(s, b'x' * (1 << 20), err))
        w.start()
        w.join(10)
        assert not w.is_alive(), '%s: 1 MiB after the reply did not drain' % svc
        assert not err, '%s: sending after the reply failed: %r' % (svc, err[0])
        s.close()
    # A datagram full of junk still gets a well-formed answer.
    assert len(udp_ask(d.addr('udp', 'time'), junk[:1400]) or b'') == 4
    d.stop()


def _send_quietly(s, data, err):
    try:
        s.sendall(data)
    except OSError as e:
        err.append(e)


class _Timex(ctypes.Structure):
    # The head of struct timex (x86_64 and other LP64 Linux); the rest of
    # the kernel's struct is covered by padding.
    _fields_ = [('modes', ctypes.c_uint), ('offset', ctypes.c_long),
                ('freq', ctypes.c_long), ('maxerror', ctypes.c_long),
                ('esterror', ctypes.c_long), ('status', ctypes.c_int),
                ('rest', ctypes.c_char * 256)]


TIME_ERROR = 5
STA_UNSYNC = 0x40


def kernel_clock_synced():
    """The kernel's view, read as the daemon reads it (adjtimex, modes 0)."""
    tx = _Timex()
    libc = ctypes.CDLL(None, use_errno=True)
    state = libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        return None
    return state != TIME_ERROR and not (tx.status & STA_UNSYNC)


def test_require_synced_clock(ctx):
    synced = kernel_clock_synced()
    if synced is None:
        raise harness.Skip('adjtimex() cannot read the clock state here')
    svc = services(require_synced_clock='yes')
    svc['plain'] = {'plugin': 'time', 'listen': LISTEN}
    d = ctx.daemon(svc)
    got = {(svc_, scheme): (tcp_read_all(d.addr('tcp', svc_)) if scheme == 'tcp'
                            else udp_ask(d.addr('udp', svc_), timeout=0.5))
           for svc_ in ('time', 'daytime') for scheme in ('tcp', 'udp')}
    # The positive control answers whatever the clock's state.
    assert len(tcp_read_all(d.addr('tcp', 'plain'))) == 4
    assert len(udp_ask(d.addr('udp', 'plain')) or b'') == 4
    err = d.stop()
    if kernel_clock_synced() != synced:
        raise harness.Skip('the clock changed state during the test')
    refusals = err.count('clock not synchronised; refusing')
    for key, data in got.items():
        if synced:
            assert data, '%s over %s: no reply although the clock is synced' % key
        else:
            assert not data, '%s over %s: replied %r although the clock is not synced' % (
                key[0], key[1], data)
    if synced:
        assert refusals == 0, err
    else:
        # Once per state change, per worker and instance: 2 workers x 2.
        assert 1 <= refusals <= 4, 'logged %d refusals:\n%s' % (refusals, err)
        assert 'svc=time' in err and 'svc=daytime' in err, err


def test_bad_daytime_format_rejected(ctx):
    """-t names the file, line and key of a format that cannot make a line."""
    tmp = ctx.tempdir()
    conf = os.path.join(tmp, 'ringd.ini')
    with open(conf, 'w') as f:
        f.write(ctx.ini({'daytime': {'plugin': 'time', 'format': 'daytime',
                                     'listen': LISTEN,
                                     'daytime_format': '%H:%M%n'},
                         'empty': {'plugin': 'time', 'listen': LISTEN,
                                   'daytime_format': ''}}))
    r = ctx.run(['-t', '-c', conf])
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if 'daytime_format' in line]
    assert len(lines) == 2, r.stderr
    assert re.match(r'.*ringd\.ini:\d+: \[daytime\] daytime_format: .*printable', lines[0]), lines
    assert re.match(r'.*ringd\.ini:\d+: \[empty\] daytime_format: .*empty', lines[1]), lines


if __name__ == '__main__':
    harness.main([
        test_time_python_tcp_udp,
        test_rdate_tcp_udp,
        test_check_time_tcp_udp,
        test_faketime_2036_wrap,
        test_daytime_nc_socat,
        test_daytime_udp,
        test_daytime_local_zone,
        test_input_ignored_reply_not_delayed,
        test_require_synced_clock,
        test_bad_daytime_format_rejected,
    ])
