#!/usr/bin/env python3
"""echo over TCP (RFC 862): bytes back intact and in order, half-close,
many clients, misbehaving clients, IPv6 and unix: listeners."""

import os
import selectors
import socket
import stat
import struct
import threading
import time

import harness
from harness import assert_same, connect, echo_roundtrip, payload, recv_exact


def test_1mib_half_close(ctx):
    d = ctx.daemon()
    data = payload(1 << 20, seed=1)
    assert_same(echo_roundtrip(d.addr('tcp'), data), data)
    d.stop()


def test_64kib(ctx):
    d = ctx.daemon()
    for seed in range(3):
        data = payload(64 << 10, seed=seed)
        assert_same(echo_roundtrip(d.addr('tcp'), data), data)
    d.stop()


def test_sizes_around_buffers(ctx):
    """Sizes either side of likely internal buffer sizes (2k, 4k, 16k, 64k...)."""
    d = ctx.daemon()
    for n in (1, 2047, 2048, 2049, 4095, 4097, 16385, 65535, 65537, 262147):
        data = payload(n, seed=n)
        assert_same(echo_roundtrip(d.addr('tcp'), data), data, 'echo of %d bytes' % n)
    d.stop()


def test_many_small_writes(ctx):
    d = ctx.daemon()
    s = connect(d.addr('tcp'))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = payload(200000, seed=7)
    got = bytearray()
    done = threading.Event()

    def reader():
        s2 = s
        while True:
            try:
                b = s2.recv(65536)
            except OSError:
                break
            if not b:
                break
            got.extend(b)
        done.set()
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    off = 0
    i = 0
    while off < len(data):
        n = 1 + (i * 37) % 97
        s.sendall(data[off:off + n])
        off += n
        i += 1
    s.shutdown(socket.SHUT_WR)
    assert done.wait(20), 'no EOF within 20 s after %d writes; got %d bytes' % (i, len(got))
    s.close()
    assert_same(bytes(got), data)
    # Interactive style: one write, wait for its echo, next write.
    s = connect(d.addr('tcp'))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for k in range(200):
        msg = b'line %d\n' % k
        s.sendall(msg)
        assert recv_exact(s, len(msg), 5) == msg
    s.close()
    d.stop()


def _concurrent(addr, n, sizes, timeout=40):
    """n clients at once through one selector; each sends its own bytes,
    half-closes, and must read exactly them back and then EOF."""
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(n):
        s = socket.socket(addr.family, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(addr.sockaddr)
        assert err in (0, 115), 'connect %d: %s' % (i, os.strerror(err))
        c = {'i': i, 's': s, 'out': payload(sizes[i % len(sizes)], seed=i), 'sent': 0,
             'got': bytearray(), 'eof': False, 'wclosed': False}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    left = n
    deadline = time.monotonic() + timeout
    while left:
        assert time.monotonic() < deadline, \
            '%d of %d connections unfinished after %d s' % (left, n, timeout)
        for key, ev in sel.select(1.0):
            c = key.data
            s = c['s']
            if ev & selectors.EVENT_WRITE and not c['wclosed']:
                try:
                    c['sent'] += s.send(c['out'][c['sent']:c['sent'] + 65536])
                except (BlockingIOError, InterruptedError):
                    pass
                if c['sent'] == len(c['out']):
                    s.shutdown(socket.SHUT_WR)
                    c['wclosed'] = True
                    sel.modify(s, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    b = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if b:
                    c['got'] += b
                    assert len(c['got']) <= len(c['out']), 'client %d got too much' % c['i']
                else:
                    assert c['wclosed'], 'client %d: EOF before it half-closed' % c['i']
                    c['eof'] = True
                    sel.unregister(s)
                    s.close()
                    left -= 1
    for c in conns:
        assert_same(bytes(c['got']), c['out'], 'client %d' % c['i'])
    sel.close()


def test_300_concurrent(ctx):
    d = ctx.daemon()
    _concurrent(d.addr('tcp'), 300, [1, 100, 1500, 4096, 20000, 70000])
    d.stop()


def test_200_concurrent_large(ctx):
    d = ctx.daemon()
    _concurrent(d.addr('tcp'), 200, [256 << 10, 100000, 1 << 20], timeout=60)
    d.stop()


def test_reset_and_silent_clients_do_not_hurt_others(ctx):
    d = ctx.daemon()
    addr = d.addr('tcp')
    silent = [connect(addr) for _ in range(5)]
    # Clients that push data without reading, then reset (RST via SO_LINGER 0).
    for k in range(5):
        r = connect(addr)
        r.setblocking(False)
        chunk = payload(1 << 16, seed=k)
        sent = 0
        t_end = time.monotonic() + 2
        while sent < (2 << 20) and time.monotonic() < t_end:
            try:
                sent += r.send(chunk)
            except BlockingIOError:
                break
        r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        r.close()
    # A reset in the middle of an echo being read back.
    r = connect(addr)
    r.sendall(payload(300000, seed=99))
    recv_exact(r, 1000)
    r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    r.close()
    # Others are served, while the silent ones stay connected.
    data = payload(1 << 20, seed=5)
    assert_same(echo_roundtrip(addr, data), data)
    _concurrent(addr, 50, [10, 5000, 100000])
    for s in silent:
        s.settimeout(0)
        try:
            b = s.recv(1)
            raise AssertionError('silent client got %r (expected nothing, still open)' % b)
        except BlockingIOError:
            pass
        # The silent clients still get service when they finally speak.
        s.settimeout(5)
        s.sendall(b'late')
        assert recv_exact(s, 4) == b'late'
        s.close()
    d.stop()


def test_ipv6_loopback(ctx):
    if not socket.has_ipv6:
        raise harness.Skip('no IPv6')
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).bind(('::1', 0))
    except OSError as e:
        raise harness.Skip('::1 unusable: %s' % e)
    d = ctx.daemon({'echo': {'listen': 'tcp://[::1]:0, udp://[::1]:0'}})
    a = d.addr('tcp')
    assert a.host == '::1' and a.url.startswith('tcp://[::1]:'), a.url
    data = payload(1 << 20, seed=6)
    assert_same(echo_roundtrip(a, data), data)
    u = d.addr('udp')
    assert u.url.startswith('udp://[::1]:'), u.url
    got, peer = harness.udp_echo(u, b'six')
    assert got == b'six' and peer[0] == '::1' and peer[1] == u.port, (got, peer)
    d.stop()


def test_wildcard_dual_stack(ctx):
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_STREAM).bind(('::1', 0))
    except OSError as e:
        raise harness.Skip('::1 unusable: %s' % e)
    d = ctx.daemon({'echo': {'listen': 'tcp://*:0'}})
    a = d.addr('tcp')
    for host in ('127.0.0.1', '::1'):
        b = harness.Addr.parse('tcp://%s:%d' % ('[%s]' % host if ':' in host else host,
                                                 a.port))
        data = payload(70000, seed=len(host))
        assert_same(echo_roundtrip(b, data), data, 'echo via %s' % host)
    d.stop()


def test_unix_socket(ctx):
    path = os.path.join(ctx.tempdir(), 'echo.sock')
    d = ctx.daemon({'echo': {'listen': 'unix:' + path, 'socket_mode': '0660'}})
    a = d.addr('unix')
    assert a.path == path, 'STATUS names %r, configured %r' % (a.url, path)
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode), 'not a socket: %o' % st.st_mode
    assert stat.S_IMODE(st.st_mode) == 0o660, 'mode %o, configured 0660' % stat.S_IMODE(st.st_mode)
    data = payload(1 << 20, seed=8)
    assert_same(echo_roundtrip(a, data), data)
    d.stop()


def test_unix_socket_mode_0600(ctx):
    path = os.path.join(ctx.tempdir(), 'echo.sock')
    d = ctx.daemon({'echo': {'listen': 'unix:' + path, 'socket_mode': '0600'}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode)
    assert_same(echo_roundtrip(d.addr('unix'), b'x' * 5000), b'x' * 5000)
    d.stop()


def test_unix_stale_socket_replaced(ctx):
    path = os.path.join(ctx.tempdir(), 'echo.sock')
    # A socket file nobody listens on any more: what a crashed daemon leaves.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    d = ctx.daemon({'echo': {'listen': 'unix:' + path, 'socket_mode': '0660'}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    assert_same(echo_roundtrip(d.addr('unix'), b'stale' * 1000), b'stale' * 1000)
    d.stop()


def test_unix_live_socket_not_stolen(ctx):
    """A socket someone is listening on is not stale: refuse, don't unlink it."""
    path = os.path.join(ctx.tempdir(), 'echo.sock')
    owner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    owner.bind(path)
    owner.listen(4)
    d = ctx.daemon({'echo': {'listen': 'unix:' + path}}, expect_ready=False)
    rc = d.run_to_exit()
    err = d.stderr()
    assert rc == 1, 'exit %s with a live socket at %s; stderr:\n%s' % (rc, path, err)
    assert path in err, 'message does not name %s:\n%s' % (path, err)
    # The owner's socket still works.
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(path)
    c.close()
    owner.close()


def test_unix_regular_file_not_removed(ctx):
    path = os.path.join(ctx.tempdir(), 'echo.sock')
    with open(path, 'w') as f:
        f.write('precious\n')
    d = ctx.daemon({'echo': {'listen': 'unix:' + path}}, expect_ready=False)
    rc = d.run_to_exit()
    err = d.stderr()
    assert rc == 1, 'exit %s with a regular file at %s; stderr:\n%s' % (rc, path, err)
    with open(path) as f:
        assert f.read() == 'precious\n', 'regular file was replaced'


def test_socat_client(ctx):
    """A client nobody here wrote: socat pipes a file and half-closes."""
    import shutil
    import subprocess
    if not shutil.which('socat'):
        raise AssertionError('socat is not installed (apt-get install socat)')
    d = ctx.daemon()
    a = d.addr('tcp')
    src = os.path.join(d.dir, 'in.bin')
    with open(src, 'wb') as f:
        f.write(payload(1 << 20, seed=11))
    with open(src, 'rb') as f:
        r = subprocess.run(['socat', '-t', '30', '-', 'TCP:127.0.0.1:%d,shut-down' % a.port],
                           stdin=f, capture_output=True, timeout=40)
    assert r.returncode == 0, 'socat exit %d: %s' % (r.returncode, r.stderr)
    assert_same(r.stdout, payload(1 << 20, seed=11), 'socat output')
    # And over a unix: listener.
    path = os.path.join(ctx.tempdir(), 'echo.sock')
    d2 = ctx.daemon({'echo': {'listen': 'unix:' + path}})
    with open(src, 'rb') as f:
        r = subprocess.run(['socat', '-t', '30', '-', 'UNIX-CONNECT:%s,shut-down' % path],
                           stdin=f, capture_output=True, timeout=40)
    assert r.returncode == 0, 'socat exit %d: %s' % (r.returncode, r.stderr)
    assert_same(r.stdout, payload(1 << 20, seed=11), 'socat unix output')
    d2.stop()
    d.stop()


def test_nc_client(ctx):
    """netcat-openbsd: -N shuts the socket down after EOF on stdin."""
    import shutil
    import subprocess
    if not shutil.which('nc'):
        raise AssertionError('nc is not installed (apt-get install netcat-openbsd)')
    d = ctx.daemon()
    a = d.addr('tcp')
    data = payload(256 << 10, seed=12)
    r = subprocess.run(['nc', '-N', '127.0.0.1', str(a.port)], input=data,
                       capture_output=True, timeout=40)
    assert r.returncode == 0, 'nc exit %d: %s' % (r.returncode, r.stderr)
    assert_same(r.stdout, data, 'nc output')
    u = d.addr('udp')
    r = subprocess.run(['nc', '-u', '-w', '2', '127.0.0.1', str(u.port)], input=b'hello udp\n',
                       capture_output=True, timeout=20)
    assert r.stdout == b'hello udp\n', 'nc -u got %r (stderr %r)' % (r.stdout, r.stderr)
    d.stop()


def test_empty_stream_and_immediate_close(ctx):
    d = ctx.daemon()
    a = d.addr('tcp')
    # Half-close with nothing sent: EOF back, promptly.
    s = connect(a)
    s.shutdown(socket.SHUT_WR)
    assert harness.recv_until_eof(s, limit=0, deadline=time.monotonic() + 5) == b''
    s.close()
    # Connect and close at once, many times; then service is normal.
    for _ in range(200):
        connect(a).close()
    # Send and close fully without reading: the daemon's echo meets a closed
    # socket (EPIPE/ECONNRESET) and must shrug it off.
    for k in range(50):
        s = connect(a)
        s.sendall(payload(20000, seed=k))
        s.close()
    data = payload(1 << 20, seed=77)
    assert_same(echo_roundtrip(a, data), data)
    d.stop()


def test_idle_timeout(ctx):
    """idle_timeout closes a silent client; a client that keeps talking stays."""
    d = ctx.daemon({'echo': {'listen': 'tcp://127.0.0.1:0', 'idle_timeout': '1s'}})
    a = d.addr('tcp')
    silent = connect(a)
    talker = connect(a)
    t0 = time.monotonic()
    silent.settimeout(5)
    k = 0
    while time.monotonic() - t0 < 2.0:
        msg = b'%d' % k
        talker.sendall(msg)
        assert recv_exact(talker, len(msg), 5) == msg
        k += 1
        time.sleep(0.2)  # the talker's pace; the timeout is what is measured
    try:
        got = silent.recv(1)
    except ConnectionResetError:
        got = b'<reset>'
    waited = time.monotonic() - t0
    assert got == b'', 'silent client: expected EOF from idle_timeout, got %r' % got
    assert waited < 4, 'silent client closed only after %.1f s (idle_timeout = 1s)' % waited
    talker.sendall(b'still here')
    assert recv_exact(talker, 10, 5) == b'still here'
    silent.close()
    talker.close()
    d.stop()


def test_connection_log_fields(ctx):
    """Log lines carry key=value fields such as svc=echo peer=127.0.0.1:PORT,
    peer=[::1]:PORT for IPv6 and peer=unix for a unix socket."""
    path = os.path.join(ctx.tempdir(), 'echo.sock')
    d = ctx.daemon(ringd={'log_level': 'debug'}, services={'echo': {
        'listen': 'tcp://127.0.0.1:0, tcp://[::1]:0, unix:' + path}})
    peers = []
    for family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        s = connect(d.addr('unix' if family == socket.AF_UNIX else 'tcp',
                           family=family))
        if family == socket.AF_INET:
            peers.append('peer=127.0.0.1:%d' % s.getsockname()[1])
        elif family == socket.AF_INET6:
            peers.append('peer=[::1]:%d' % s.getsockname()[1])
        else:
            peers.append('peer=unix')
        s.sendall(b'log me')
        recv_exact(s, 6)
        s.close()
    d.stop()
    err = d.stderr()
    for peer in peers:
        lines = [l for l in err.splitlines() if peer in l.split()]
        assert lines, 'no debug line with %s:\n%s' % (peer, err)
        assert all('svc=echo' in l.split() for l in lines), lines


if __name__ == '__main__':
    harness.main([
        test_1mib_half_close,
        test_64kib,
        test_sizes_around_buffers,
        test_many_small_writes,
        test_300_concurrent,
        test_200_concurrent_large,
        test_reset_and_silent_clients_do_not_hurt_others,
        test_ipv6_loopback,
        test_wildcard_dual_stack,
        test_unix_socket,
        test_unix_socket_mode_0600,
        test_unix_stale_socket_replaced,
        test_unix_live_socket_not_stolen,
        test_unix_regular_file_not_removed,
        test_socat_client,
        test_nc_client,
        test_empty_stream_and_immediate_close,
        test_idle_timeout,
        test_connection_log_fields,
    ])
