#!/usr/bin/env python3
"""discard (RFC 863): socat and python send megabytes and get nothing back
and a clean close; UDP gets no reply; max_time ends a connection that keeps
sending, which idle_timeout alone never would."""

import shutil
import socket
import subprocess
import time

import harness

LISTEN = 'tcp://127.0.0.1:0, udp://127.0.0.1:0'


def test_socat_10mib_nothing_back(ctx):
    socat = shutil.which('socat')
    if not socat:
        raise harness.Skip('socat not installed')
    d = ctx.daemon({'discard': {'listen': LISTEN}})
    t = d.addr('tcp', 'discard')
    data = harness.payload(10 << 20, seed=863)
    # socat sends stdin, half-closes, then waits for our close; -t bounds
    # that wait, so a daemon that never closes fails the exit status.
    r = subprocess.run([socat, '-t', '5', '-', 'TCP:%s:%d' % (t.host, t.port)],
                       input=data, capture_output=True, timeout=30)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout == b'', 'discard sent %d bytes' % len(r.stdout)
    d.stop()


def test_python_clean_close(ctx):
    d = ctx.daemon({'discard': {'listen': LISTEN}})
    t = d.addr('tcp', 'discard')
    for n in (0, 1, 65536, 3 << 20):
        s = harness.connect(t)
        s.sendall(harness.payload(n, seed=n))
        s.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        # A clean close is EOF, not a reset, and comes at once.
        got = harness.recv_until_eof(s, limit=0, deadline=t0 + 5)
        assert got == b''
        assert time.monotonic() - t0 < 2.0
        s.close()
    d.stop()


def test_many_clients_in_parallel(ctx):
    d = ctx.daemon({'discard': {'listen': LISTEN}})
    t = d.addr('tcp', 'discard')
    socks = [harness.connect(t) for _ in range(20)]
    chunk = harness.payload(1 << 16)
    for _ in range(16):
        for s in socks:
            s.sendall(chunk)
    for s in socks:
        s.shutdown(socket.SHUT_WR)
    for s in socks:
        assert harness.recv_until_eof(s, limit=0, deadline=time.monotonic() + 5) == b''
        s.close()
    d.stop()


def test_udp_no_reply(ctx):
    d = ctx.daemon({'discard': {'listen': LISTEN}})
    u = d.addr('udp', 'discard')
    s = harness.client_socket(socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', 0))
    s.settimeout(0.5)
    for n in (0, 1, 512, 1400, 9000):
        s.sendto(harness.payload(n, seed=n), u.sockaddr)
    try:
        got = s.recv(65536)
        raise AssertionError('discard answered a datagram with %d bytes' % len(got))
    except socket.timeout:
        pass
    s.close()
    # The daemon is still there.
    c = harness.connect(d.addr('tcp', 'discard'))
    c.shutdown(socket.SHUT_WR)
    assert harness.recv_until_eof(c, limit=0, deadline=time.monotonic() + 5) == b''
    c.close()
    d.stop()


def test_max_time_closes_busy_connection(ctx):
    d = ctx.daemon({'discard': {'listen': 'tcp://127.0.0.1:0', 'max_time': '1s',
                                'idle_timeout': '60s'}})
    t = d.addr('tcp', 'discard')
    s = harness.connect(t)
    s.settimeout(0.1)
    t0 = time.monotonic()
    closed = None
    # Keep the connection busy: only the whole-session limit can end it.
    while time.monotonic() - t0 < 5:
        try:
            s.send(b'still here\n')
            if s.recv(100) == b'':
                closed = time.monotonic() - t0
                break
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            closed = time.monotonic() - t0
            break
    s.close()
    assert closed is not None, 'max_time = 1s did not close the connection within 5 s'
    assert 0.8 <= closed <= 4.0, 'closed after %.2f s, max_time = 1s' % closed
    d.stop()


def test_max_time_zero_means_no_limit(ctx):
    d = ctx.daemon({'discard': {'listen': 'tcp://127.0.0.1:0', 'max_time': '0',
                                'idle_timeout': '1s'}})
    t = d.addr('tcp', 'discard')
    s = harness.connect(t)
    s.settimeout(0.2)
    t0 = time.monotonic()
    # Quiet: idle_timeout (1 s) is what closes it.
    try:
        got = s.recv(100)
    except socket.timeout:
        got = None
    while got is None and time.monotonic() - t0 < 5:
        try:
            got = s.recv(100)
        except socket.timeout:
            pass
        except ConnectionResetError:
            got = b''
    assert got == b'', 'idle connection not closed'
    assert 0.8 <= time.monotonic() - t0 <= 4.0
    s.close()
    d.stop()


if __name__ == '__main__':
    harness.main([
        test_socat_10mib_nothing_back,
        test_python_clean_close,
        test_many_clients_in_parallel,
        test_udp_no_reply,
        test_max_time_closes_busy_connection,
        test_max_time_zero_means_no_limit,
    ])
