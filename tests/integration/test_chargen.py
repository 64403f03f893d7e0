#!/usr/bin/env python3
"""chargen (RFC 864): the stream read by python, socat and nc matches the
rotating pattern byte for byte across lines and chunks; max_bytes and
max_time end it; clients that never read cost bounded memory; UDP is
refused without allow_udp and answers 0-512 bytes of the pattern with it."""

import os
import shutil
import socket
import subprocess
import time

import harness

ROW = 74
BLOCK = bytes(
    b for r in range(95) for b in
    bytes(0x20 + (r + c) % 95 for c in range(72)) + b'\r\n')
assert len(BLOCK) == 7030


def pattern(n, start=0):
    reps = (start + n) // len(BLOCK) + 2
    return (BLOCK * reps)[start:start + n]


def svc(**keys):
    out = {'listen': 'tcp://127.0.0.1:0'}
    out.update({k: str(v) for k, v in keys.items()})
    return {'chargen': out}


def read_all(addr, limit, timeout=20.0, shut_wr=False, send=None):
    s = harness.connect(addr, timeout)
    try:
        if send:
            s.sendall(send)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        return harness.recv_until_eof(s, limit=limit, deadline=time.monotonic() + timeout)
    finally:
        s.close()


def test_python_1mib_exact_pattern(ctx):
    """The default max_bytes (1 MiB): exactly that much, then a clean close."""
    d = ctx.daemon(svc())
    got = read_all(d.addr('tcp', 'chargen'), limit=1 << 21)
    harness.assert_same(got, pattern(1 << 20), 'chargen stream')
    assert got[:74] == bytes(range(0x20, 0x68)) + b'\r\n'
    assert got[74:148] == bytes(range(0x21, 0x69)) + b'\r\n'
    d.stop()


def test_socat_and_nc_read_the_pattern(ctx):
    d = ctx.daemon(svc(max_bytes='300k'))
    t = d.addr('tcp', 'chargen')
    clients = []
    if shutil.which('socat'):
        clients.append(['socat', '-u', 'TCP:%s:%d' % (t.host, t.port), '-'])
    if shutil.which('nc'):
        clients.append(['nc', '-d', t.host, str(t.port)])
    if not clients:
        raise harness.Skip('neither socat nor nc installed')
    for cmd in clients:
        r = subprocess.run(cmd, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (cmd, r.returncode, r.stderr)
        harness.assert_same(r.stdout, pattern(300 * 1024), cmd[0])
    d.stop()


def test_max_bytes_exact(ctx):
    for n in (1, 73, 74, 7030, 65536, 300001):
        d = ctx.daemon(svc(max_bytes=n), ringd={'workers': '1'})
        got = read_all(d.addr('tcp', 'chargen'), limit=n + 1)
        harness.assert_same(got, pattern(n), 'max_bytes=%d' % n)
        d.stop()


def test_unlimited_stream_slow_reader(ctx):
    """max_bytes = 0 keeps streaming; a reader that takes small bites,
    slowly, sees one continuous pattern across the daemon's chunks."""
    d = ctx.daemon(svc(max_bytes=0, max_time=0))
    s = harness.connect(d.addr('tcp', 'chargen'))
    got = bytearray()
    n = 0
    while len(got) < 3 << 20:
        got += harness.recv_exact(s, min(4093, (3 << 20) - len(got)))
        n += 1
        if n % 16 == 0 and len(got) < 1 << 20:
            time.sleep(0.002)
    s.close()
    harness.assert_same(bytes(got), pattern(3 << 20), 'unlimited stream')
    d.stop()


def test_half_close_keeps_streaming_and_input_ignored(ctx):
    """RFC 864 sends until the client closes: a client that half-closes at
    once, or sends junk, still gets the whole stream."""
    d = ctx.daemon(svc(max_bytes='200k'))
    t = d.addr('tcp', 'chargen')
    got = read_all(t, limit=1 << 20, shut_wr=True)
    harness.assert_same(got, pattern(200 * 1024), 'after half-close')
    got = read_all(t, limit=1 << 20, send=b'stop!\r\n' * 1000, shut_wr=True)
    harness.assert_same(got, pattern(200 * 1024), 'after input')
    d.stop()


def test_max_time_ends_stream(ctx):
    d = ctx.daemon(svc(max_bytes=0, max_time='1s'))
    s = harness.connect(d.addr('tcp', 'chargen'))
    t0 = time.monotonic()
    total = 0
    s.settimeout(5)
    try:
        while time.monotonic() - t0 < 6:
            b = s.recv(1 << 16)
            if not b:
                break
            total += len(b)
    except ConnectionResetError:
        pass
    took = time.monotonic() - t0
    s.close()
    assert 0.8 <= took <= 4.0, 'stream ended after %.2f s, max_time = 1s' % took
    assert total > 1 << 20, 'only %d bytes in a second' % total
    d.stop()


def test_never_reading_clients_bounded_memory(ctx):
    d = ctx.daemon(svc(max_bytes=0, max_time=0), env=harness.MEMORY_TEST_ENV)
    t = d.addr('tcp', 'chargen')
    # Warm up the allocator and each worker's paths before the baseline.
    for _ in range(4):
        w = harness.connect(t)
        harness.recv_exact(w, 200000)
        w.close()
    time.sleep(0.2)
    base = d.rss_kib()
    socks = []
    for _ in range(64):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(t.sockaddr)
        socks.append(s)
    peak = base
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:
        time.sleep(0.1)
        peak = max(peak, d.rss_kib())
    # And one that reads, so the daemon is shown to be streaming meanwhile.
    r = harness.connect(t)
    harness.assert_same(harness.recv_exact(r, 100000), pattern(100000), 'reader')
    r.close()
    for s in socks:
        s.close()
    assert peak - base < 16 * 1024, \
        'RSS grew by %d KiB with 64 clients that never read' % (peak - base)
    d.stop()


def test_never_reading_client_closed_by_idle_timeout(ctx):
    """Once the socket buffers are full no send completes: the connection
    is idle, and idle_timeout ends it even with no byte or time limit."""
    d = ctx.daemon(svc(max_bytes=0, max_time=0, idle_timeout='1s'))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(d.addr('tcp', 'chargen').sockaddr)
    time.sleep(2.5)
    got = bytearray()
    s.settimeout(2)
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += b
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError('still open after idle_timeout; read %d bytes' % len(got))
    s.close()
    harness.assert_same(bytes(got), pattern(len(got)), 'buffered stream')
    d.stop()


def _udp_ini(ctx, allow):
    keys = {'listen': 'tcp://127.0.0.1:0, udp://127.0.0.1:0'}
    if allow is not None:
        keys['allow_udp'] = allow
    text = ctx.ini({'chargen': keys})
    path = os.path.join(ctx.tempdir(), 'ringd.ini')
    with open(path, 'w') as f:
        f.write(text)
    return path, text


def test_udp_refused_without_allow_udp(ctx):
    for allow in (None, 'no'):
        path, text = _udp_ini(ctx, allow)
        r = ctx.run(['-c', path, '-t'])
        out = r.stdout + r.stderr
        assert r.returncode == 1, (r.returncode, out)
        lines = text.split('\n')
        want = next(i + 1 for i, l in enumerate(lines) if
                    l.startswith('allow_udp =' if allow else '[chargen]'))
        assert '%s:%d: [chargen] allow_udp: ' % (path, want) in out, out
        assert 'CERT CA-1996-01' in out, out
        d = ctx.daemon(ini=text, expect_ready=False)
        assert d.run_to_exit() == 1, d.stderr()
        assert 'allow_udp' in d.stderr()


def test_udp_allowed_replies(ctx):
    d = ctx.daemon({'chargen': {'listen': 'udp://127.0.0.1:0', 'allow_udp': 'yes'}})
    u = d.addr('udp', 'chargen')
    s = harness.client_socket(socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', 0))
    s.settimeout(2)
    lens = []
    # Within the default per-source burst of the UDP guard.
    for i in range(15):
        s.sendto(b'x' if i % 2 else b'', u.sockaddr)
        got, peer = s.recvfrom(65536)
        assert peer == u.sockaddr
        assert len(got) <= 512, 'UDP reply of %d bytes' % len(got)
        lens.append(len(got))
        if got:
            # Each reply starts at the beginning of a line of the pattern.
            line = got[0] - 0x20
            assert got == pattern(len(got), line * ROW), got[:80]
    s.close()
    assert len(set(lens)) > 1, 'reply lengths never vary: %r' % lens
    d.stop()


if __name__ == '__main__':
    harness.main([
        test_python_1mib_exact_pattern,
        test_socat_and_nc_read_the_pattern,
        test_max_bytes_exact,
        test_unlimited_stream_slow_reader,
        test_half_close_keeps_streaming_and_input_ignored,
        test_max_time_ends_stream,
        test_never_reading_clients_bounded_memory,
        test_never_reading_client_closed_by_idle_timeout,
        test_udp_refused_without_allow_udp,
        test_udp_allowed_replies,
    ])
