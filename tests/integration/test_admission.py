#!/usr/bin/env python3
"""Admission: what happens to a connection before and around a plugin's
on_open(): plugins that refuse connections while others are held at
max_connections, plugins that misbehave in on_close()."""

import errno
import os
import selectors
import socket
import time

import harness

FIXTURES = os.environ.get('RINGD_FIXTURE_DIR', '')


def fixture_daemon(ctx, ringd=None, refuse=None):
    """A daemon whose only service is the refusing fixture plugin."""
    if not os.path.exists(os.path.join(FIXTURES, 'refuse.so')):
        raise harness.DaemonError('RINGD_FIXTURE_DIR=%r has no refuse.so' % FIXTURES)
    core = {'workers': '1', 'plugin_dir': FIXTURES}
    core.update(ringd or {})
    svc = {'plugin': 'refuse', 'listen': 'tcp://127.0.0.1:0'}
    svc.update(refuse or {})
    return ctx.daemon(services={'refuse': svc}, ringd=core)


def burst(addr, n, deadline_s=20.0):
    """n clients connect at once and each sends a line. Returns how many
    were served (echo back) and how many closed (EOF or reset at any
    point); raises if one hangs or is served the wrong bytes."""
    clients = {}
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(addr.sockaddr)
        assert err in (0, errno.EINPROGRESS), errno.errorcode.get(err)
        clients[i] = s
    sel = selectors.DefaultSelector()
    for i, s in clients.items():
        sel.register(s, selectors.EVENT_WRITE, i)
    got = {i: b'' for i in clients}
    served, closed = set(), set()
    deadline = time.monotonic() + deadline_s
    try:
        while len(served) + len(closed) < n:
            left = n - len(served) - len(closed)
            assert time.monotonic() < deadline, \
                '%d clients hang (served %d, closed %d)' % (left, len(served), len(closed))
            for key, ev in sel.select(0.5):
                i, s = key.data, clients[key.data]
                want = b'line %03d\n' % i
                try:
                    if ev & selectors.EVENT_WRITE:
                        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if e:
                            raise ConnectionResetError(e)
                        s.send(want)
                        sel.modify(s, selectors.EVENT_READ, i)
                        continue
                    b = s.recv(64)
                except (ConnectionResetError, BrokenPipeError):
                    b = b''
                if not b:
                    closed.add(i)
                elif len(got[i] + b) >= len(want):
                    assert got[i] + b == want, (i, got[i] + b)
                    served.add(i)
                else:
                    got[i] += b
                    continue
                sel.unregister(s)
                s.close()
    finally:
        for s in clients.values():
            s.close()
        sel.close()
    return len(served), len(closed)


def test_refusing_plugin_behind_max_connections(ctx):
    """Every other connection is refused in on_open() while the rest wait
    at max_connections = 3: each held connection that is served after a
    slot frees may be refused in turn. This used to re-enter the holding
    queue and open closed fds again (SIGSEGV within a few bursts)."""
    d = fixture_daemon(ctx, ringd={'max_connections': '3'})
    addr = d.addr('tcp', svc='refuse')
    served = closed = 0
    for _ in range(40):
        s, c = burst(addr, 150)
        served += s
        closed += c
        assert d.alive(), 'ringd died:\n' + d.stderr()
    # Both outcomes must have happened, or the fixture did not refuse.
    assert served > 1000 and closed > 1000, (served, closed)
    d.stop()


def test_refusing_plugin_without_limit(ctx):
    """The same fixture with no connection limit: half served, half
    closed, none hang."""
    d = fixture_daemon(ctx, ringd={'workers': '2'})
    served, closed = burst(d.addr('tcp', svc='refuse'), 200)
    assert served >= 60 and closed >= 60, (served, closed)
    d.stop()


def test_host_calls_from_on_close_are_ignored(ctx):
    """A plugin that calls send, close, abort and set_timeout from
    on_close() on the connection going away: send says -EPIPE (the fixture
    aborts the daemon otherwise), the rest do nothing, no double close."""
    d = fixture_daemon(ctx, ringd={'workers': '2'},
                       refuse={'refuse_every': '3', 'abort_in_close': 'yes'})
    addr = d.addr('tcp', svc='refuse')
    served = 0
    for _ in range(5):
        served += burst(addr, 100)[0]
        assert d.alive(), 'ringd died:\n' + d.stderr()
    assert served >= 200, served
    d.stop()


if __name__ == '__main__':
    harness.main([
        test_refusing_plugin_behind_max_connections,
        test_refusing_plugin_without_limit,
        test_host_calls_from_on_close_are_ignored,
    ])
