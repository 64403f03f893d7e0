#!/usr/bin/env python3
"""echo over UDP: each datagram answered with the same bytes from the address
it arrived on; the reflection guard drops low source ports and the daemon's
own service ports."""

import socket
import time

import harness
from harness import payload, udp_echo


def test_udp_sizes(ctx):
    d = ctx.daemon()
    u = d.addr('udp')
    for n in (1, 2, 63, 64, 512, 513, 1000, 1400):
        data = payload(n, seed=n)
        got, peer = udp_echo(u, data)
        assert got == data, 'datagram of %d bytes came back as %d bytes' % (n, len(got))
        assert peer == u.sockaddr, 'reply from %r, expected from %r' % (peer, u.sockaddr)
    d.stop()


# Tests about echo itself lift the per-source rate limit, which
# test_udp_guard.py tests with its defaults.
UNLIMITED = {'udp_rate': '1000000', 'udp_burst': '1000000', 'udp_global_rate': '0'}


def test_udp_many_datagrams_one_socket(ctx):
    """Each datagram gets its own reply, never merged or split."""
    d = ctx.daemon(ringd=UNLIMITED)
    u = d.addr('udp')
    s = harness.client_socket(socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', 0))
    s.settimeout(3)
    want = {}
    for i in range(100):
        msg = b'%04d:' % i + payload(10 + i * 13, seed=i)
        want[msg[:5]] = msg
        s.sendto(msg, u.sockaddr)
        if i % 10 == 9:
            # keep well within socket buffers: read back what was sent
            for _ in range(10):
                got, peer = s.recvfrom(65536)
                assert want.pop(got[:5], None) == got, 'unexpected datagram %r' % got[:20]
    assert not want, '%d datagrams unanswered' % len(want)
    s.close()
    d.stop()


def test_udp_two_services_reply_from_own_address(ctx):
    d = ctx.daemon({'echo': {'listen': 'udp://127.0.0.1:0'},
                    'echo2': {'plugin': 'echo', 'listen': 'udp://127.0.0.1:0'}})
    a, b = d.addr('udp', 'echo'), d.addr('udp', 'echo2')
    assert a.port != b.port
    for x in (a, b):
        got, peer = udp_echo(x, b'which')
        assert got == b'which' and peer == x.sockaddr, (got, peer, x)
    d.stop()


def _need_low_ports():
    """Sending from a port below 1024 needs root (or CAP_NET_BIND_SERVICE)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((harness.random_loopback(), 1023))
    except PermissionError:
        raise harness.Skip('cannot bind source ports below 1024 without privilege')
    except OSError:
        pass
    finally:
        s.close()


def _bind_udp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(addr)
    except OSError:
        s.close()
        return None
    return s


def test_reflection_guard_low_ports(ctx):
    _need_low_ports()
    d = ctx.daemon()
    u = d.addr('udp')
    tried = []
    src = harness.random_loopback()
    for port in (7, 13, 17, 19, 53, 123, 1023):
        s = _bind_udp((src, port))
        if s is None:
            continue
        tried.append(port)
        s.sendto(b'reflect me %d' % port, u.sockaddr)
        # Positive control after the guarded one: the daemon is up and answering.
        got, _ = udp_echo(u, b'control %d' % port)
        assert got == b'control %d' % port
        s.settimeout(0.3)
        try:
            got, peer = s.recvfrom(65536)
            raise AssertionError('daemon answered source port %d with %r' % (port, got))
        except socket.timeout:
            pass
        s.close()
    assert len(tried) >= 4, 'could bind only source ports %r on %s' % (tried, src)
    # Port 1024 is the first one allowed.
    s = _bind_udp((src, 1024))
    if s is not None:
        s.settimeout(2)
        s.sendto(b'from 1024', u.sockaddr)
        got, _ = s.recvfrom(65536)
        assert got == b'from 1024', got
        s.close()
    d.stop()


def test_reflection_guard_own_service_port(ctx):
    """A datagram whose source port is one of the daemon's own service ports
    (another echo server, or a spoof of ours) gets no reply: no echo loops."""
    d = ctx.daemon({'echo': {'listen': 'udp://127.0.0.1:0'},
                    'echo2': {'plugin': 'echo', 'listen': 'udp://127.0.0.1:0'}})
    a, b = d.addr('udp', 'echo'), d.addr('udp', 'echo2')
    # The service ports are taken on 127.0.0.1; all of 127/8 is loopback.
    src = harness.random_loopback()
    for target, src_port in ((a, a.port), (a, b.port), (b, a.port)):
        s = _bind_udp((src, src_port))
        assert s is not None, 'cannot bind %s:%d' % (src, src_port)
        s.sendto(b'loop?', target.sockaddr)
        got, _ = udp_echo(target, b'control')
        assert got == b'control'
        s.settimeout(0.3)
        try:
            got, peer = s.recvfrom(65536)
            raise AssertionError('daemon answered %s from its own service port %d'
                                 % (target.url, src_port))
        except socket.timeout:
            pass
        s.close()
    d.stop()


def test_udp_and_tcp_together(ctx):
    d = ctx.daemon()
    t, u = d.addr('tcp'), d.addr('udp')
    data = payload(1 << 20, seed=3)
    harness.assert_same(harness.echo_roundtrip(t, data), data)
    got, _ = udp_echo(u, b'x' * 1400)
    assert got == b'x' * 1400
    d.stop()


def test_udp_flood_then_service(ctx):
    """A burst larger than the socket buffer loses datagrams, not the service."""
    d = ctx.daemon()
    u = d.addr('udp')
    s = harness.client_socket(socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    t_end = time.monotonic() + 1.0
    n = 0
    while time.monotonic() < t_end and n < 20000:
        s.sendto(payload(1400, seed=n), u.sockaddr)
        n += 1
    s.close()
    # Another source: the flooder itself is rate-limited now.
    # The daemon's buffer may still be full for an instant: sent again if lost.
    got, _ = harness.udp_echo_lossy(u, b'after flood', src=(harness.random_loopback(), 0),
                                    timeout=2)
    assert got == b'after flood'
    d.stop()


def test_large_datagrams_never_truncated(ctx):
    """Datagrams larger than any receive buffer: the same bytes back, or no
    reply at all; never a truncated or altered echo."""
    d = ctx.daemon()
    u = d.addr('udp')
    s = harness.client_socket(socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', 0))
    s.settimeout(1.0)
    for n in (1472, 2048, 4097, 9000, 65507):
        data = payload(n, seed=n)
        s.sendto(data, u.sockaddr)
        try:
            got, _ = s.recvfrom(70000)
        except socket.timeout:
            continue
        assert got == data, 'datagram of %d bytes came back as %d bytes%s' % (
            n, len(got), '' if len(got) != n else ' (altered)')
    s.close()
    got, _ = udp_echo(u, b'ok')
    assert got == b'ok'
    d.stop()


def test_reflection_guard_ipv6(ctx):
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(('::1', 0))
    except OSError as e:
        raise harness.Skip('::1 unusable: %s' % e)
    _need_low_ports()
    d = ctx.daemon({'echo': {'listen': 'udp://[::1]:0'}})
    u = d.addr('udp')
    tried = 0
    import random
    ports = random.sample(range(1, 1024), 12)
    for port in ports:
        if tried == 4:
            break
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            s.bind(('::1', port))
        except OSError:
            s.close()
            continue
        tried += 1
        s.sendto(b'reflect', u.sockaddr)
        got, _ = udp_echo(u, b'control')
        assert got == b'control'
        s.settimeout(0.3)
        try:
            got = s.recv(100)
            raise AssertionError('daemon answered [::1]:%d' % port)
        except socket.timeout:
            pass
        s.close()
    assert tried >= 2, 'could bind only %d low ports on ::1' % tried
    d.stop()


def test_wildcard_reply_from_arrival_address(ctx):
    """listen = udp://*:PORT: the reply comes from the address the datagram
    was sent to (IP_PKTINFO), not whatever source routing would pick."""
    d = ctx.daemon({'echo': {'listen': 'udp://*:0'}})
    u = d.addr('udp')
    dests = [(socket.AF_INET, '127.0.0.1'), (socket.AF_INET, harness.random_loopback())]
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(('::1', 0))
        dests.append((socket.AF_INET6, '::1'))
    except OSError:
        pass
    for fam, host in dests:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.sendto(b'to ' + host.encode(), (host, u.port))
        try:
            got, peer = s.recvfrom(100)
        except socket.timeout:
            raise AssertionError('no reply to a datagram sent to %s:%d' % (host, u.port))
        assert got == b'to ' + host.encode(), got
        assert peer[0] == host and peer[1] == u.port, \
            'sent to %s:%d, reply came from %s:%d' % (host, u.port, peer[0], peer[1])
        s.close()
    d.stop()


if __name__ == '__main__':
    harness.main([
        test_udp_sizes,
        test_udp_many_datagrams_one_socket,
        test_udp_two_services_reply_from_own_address,
        test_reflection_guard_low_ports,
        test_reflection_guard_own_service_port,
        test_udp_and_tcp_together,
        test_udp_flood_then_service,
        test_large_datagrams_never_truncated,
        test_reflection_guard_ipv6,
        test_wildcard_reply_from_arrival_address,
    ])
