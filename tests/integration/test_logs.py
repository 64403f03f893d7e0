#!/usr/bin/env python3
"""Logs for monitoring: log_connections lines with the right fields and
values (bytes as the client sent them, the close reason, the addresses),
inherited from [ringd] and overridden per service; errors repeated under
a flood come out once per interval with the count held back."""

import os
import re
import socket
import time

import harness
from harness import connect, echo_roundtrip, payload, assert_same

CONN_LINE = re.compile(r'^info: conn: closed (.*)$', re.M)


def fields(text):
    """key=value pairs of a log line, double-quoted values unescaped."""
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', text):
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r'\\(.)', r'\1', v[1:-1])
        out[m.group(1)] = v
    return out


def conn_lines(d, want, timeout=5.0):
    """The close lines once there are at least `want` of them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [fields(l) for l in CONN_LINE.findall(d.stderr())]
        if len(lines) >= want or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_log_connections_fields(ctx):
    sock = os.path.join(ctx.tempdir(), 'echo"1".sock')
    d = ctx.daemon({
        'echo': {'listen': 'tcp://127.0.0.1:0, unix:%s' % sock, 'idle_timeout': '300ms'},
        'quiet': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0', 'log_connections': 'no'},
    }, ringd={'log_connections': 'yes'})
    tcp = d.addr('tcp')
    data = payload(12345, seed=7)
    s = connect(tcp)
    client = '%s:%d' % s.getsockname()
    t0 = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = harness.recv_until_eof(s, deadline=time.monotonic() + 10)
    elapsed_us = (time.monotonic() - t0) * 1e6
    s.close()
    assert_same(got, data)

    # Idle: closed by idle_timeout after 3 bytes each way.
    idle = connect(tcp)
    idle_client = '%s:%d' % idle.getsockname()
    idle.sendall(b'abc')
    assert harness.recv_exact(idle, 3) == b'abc'
    assert harness.recv_until_eof(idle, deadline=time.monotonic() + 5) == b''
    idle.close()

    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(5)
    u.connect(sock)
    u.sendall(b'unix!')
    u.shutdown(socket.SHUT_WR)
    assert harness.recv_until_eof(u, deadline=time.monotonic() + 5) == b'unix!'
    u.close()

    assert_same(echo_roundtrip(d.addr('tcp', svc='quiet'), b'shh'), b'shh')

    lines = conn_lines(d, 3)
    by_peer = {l.get('peer'): l for l in lines}
    assert len(lines) == 3, 'expected 3 close lines (none for quiet):\n' + d.stderr()
    assert all(l['svc'] == 'echo' for l in lines), lines

    first = by_peer[client]
    assert first['transport'] == 'tcp', first
    assert first['local'] == '127.0.0.1:%d' % tcp.port, first
    assert int(first['bytes_in']) == len(data), first
    assert int(first['bytes_out']) == len(data), first
    assert first['reason'] == 'peer', first
    assert 0 <= int(first['duration_us']) <= elapsed_us + 1e6, (first, elapsed_us)

    second = by_peer[idle_client]
    assert (second['bytes_in'], second['bytes_out'], second['reason']) == ('3', '3', 'idle'), second
    # Closed by idle_timeout (300 ms), not before.
    assert int(second['duration_us']) >= 250000, second

    third = by_peer['unix']
    assert third['transport'] == 'unix', third
    assert third['local'] == 'unix:' + sock, third
    assert (third['bytes_in'], third['bytes_out']) == ('5', '5'), third
    # The path has quotes: written quoted and escaped, one field.
    assert re.search(r' local="unix:[^"]*echo\\"1\\"\.sock" bytes_in=5 ', d.stderr()), d.stderr()
    d.stop()


def test_log_connections_off_by_default(ctx):
    d = ctx.daemon({'echo': {'listen': 'tcp://127.0.0.1:0'},
                    'loud': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0',
                             'log_connections': 'yes'}})
    assert_same(echo_roundtrip(d.addr('tcp'), b'x' * 10), b'x' * 10)
    assert_same(echo_roundtrip(d.addr('tcp', svc='loud'), b'y' * 20), b'y' * 20)
    lines = conn_lines(d, 1)
    time.sleep(0.2)
    lines = [fields(l) for l in CONN_LINE.findall(d.stderr())]
    assert [(l['svc'], l['bytes_in']) for l in lines] == [('loud', '20')], d.stderr()
    d.stop()


PAUSED = re.compile(r'^warning: accept: paused svc=echo addr=(\S+) '
                    r'reason="max_connections reached" suppressed=(\d+)$', re.M)

LINE = re.compile(r'^(?:<\d>|\w+: )(\S+): (.*)$', re.M)


def assert_service_named_once(text, services):
    """Each line names its service once, in svc=: a line whose subject
    is a service's name, or with more than one svc=, says it twice."""
    for subject, rest in LINE.findall(text):
        line = '%s: %s' % (subject, rest)
        assert subject not in services, 'service as subject: ' + line
        assert len(re.findall(r'(?:^| )svc=', rest)) <= 1, 'two svc=: ' + line


def test_lines_name_the_service_once(ctx):
    """The lines of the daemon's own modules (accept, listen) take the
    module as subject: the service is a field, named once."""
    d = ctx.daemon({'guarded': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0',
                                'deny': '127.0.0.0/8'},
                    'open': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0'}},
                   ringd={'log_connections': 'yes'})
    s = connect(d.addr('tcp', svc='guarded'))
    try:                        # refused: closed, with a reset
        assert harness.recv_until_eof(s, deadline=time.monotonic() + 5) == b''
    except ConnectionResetError:
        pass
    s.close()
    assert_same(echo_roundtrip(d.addr('tcp', svc='open'), b'o'), b'o')
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (
            'refused connections' in d.stderr() and 'svc=open' in d.stderr()):
        time.sleep(0.05)
    busy = d.addr('tcp', svc='guarded')
    b = ctx.daemon({'busy': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:%d' % busy.port}},
                   expect_ready=False)
    assert b.run_to_exit() == 1, b.stderr()
    err = d.stop() + b.stderr()
    assert re.search(r'^notice: accept: refused connections deny=1 svc=guarded ', err,
                     re.M), err
    assert re.search(r'^error: listen: bind failed svc=busy addr=tcp://127.0.0.1:%d '
                     r'error="Address already in use"$' % busy.port, err, re.M), err
    assert re.search(r'^info: conn: closed svc=open ', err, re.M), err
    assert_service_named_once(err, {'guarded', 'open', 'busy'})


def test_accept_pauses_rate_limited_under_flood(ctx):
    """At max_connections under a flood of connects the listener pauses
    again every second; the log says so once per 10 s, then with the
    number of pause lines it held back."""
    d = ctx.daemon(ringd={'workers': '1', 'max_connections': '2'})
    tcp = d.addr('tcp')
    held = [connect(tcp) for _ in range(2)]
    for s in held:
        s.sendall(b'h')
        assert harness.recv_exact(s, 1) == b'h'
    flood = harness.connect_burst(tcp, 100)
    t0 = time.monotonic()
    lines = []
    while time.monotonic() - t0 < 13 and len(lines) < 2:
        time.sleep(0.2)
        lines = PAUSED.findall(d.stderr())
    assert len(lines) == 2, 'expected 2 pause lines in %.1f s:\n%s' % (
        time.monotonic() - t0, d.stderr())
    assert lines[0] == ('tcp://127.0.0.1:%d' % tcp.port, '0'), lines
    # A retry each second: about 9 held back between the two lines.
    assert 5 <= int(lines[1][1]) <= 10, lines
    assert d.alive()
    for s in held + list(flood.values()):
        s.close()
    d.stop()


if __name__ == '__main__':
    harness.main([test_log_connections_fields,
                  test_log_connections_off_by_default,
                  test_lines_name_the_service_once,
                  test_accept_pauses_rate_limited_under_flood])
