#!/usr/bin/env python3
"""ringd-probe --load against ringd (echo and http, keep-alive and a
connection per request) and nginx-light (`return 200`), on this variant's
engine: requests complete, none fails, the printed figures parse, -n is
exact; against scripted HTTP servers, which connections are kept (chunked
bodies, HTTP/1.0, Connection: close, a body ended by the close); and
against servers that answer wrongly (an echo that flips a byte, a 503,
bytes after the body, nothing listening): errors counted, exit 2. -c
past the soft RLIMIT_NOFILE raises it; usage mistakes, a hard limit too
low among them, exit 3."""

import json
import os
import re
import resource
import socket

import harness

import test_probe
from test_probe import Listener, free_port, probe, start_nginx, stop_group, url

NUM = r'[0-9]+(?:\.[0-9]+)?'


def result(lines):
    """The RESULT line's key=value words, every value that looks like a
    number as a float."""
    res = [ln for ln in lines if ln.startswith('RESULT ')]
    assert len(res) == 1, lines
    out = {}
    for word in res[0].split()[1:]:
        k, v = word.split('=', 1)
        out[k] = float(v) if re.fullmatch(NUM, v) else v
    return out


def load_ok(ctx, target, *args, conns=4):
    """A one-second load that must succeed; returns the RESULT fields
    after checking the text around them."""
    rc, lines, _ = probe(ctx, '--load', '-c', str(conns), '-d', '1',
                         '--warmup', '200ms', *args, target, timeout=30)
    assert rc == 0, (rc, lines)
    assert re.fullmatch(r'LOAD %s: .*, %d connections, .* measured \((io_uring|epoll)\)'
                        % (re.escape(target), conns), lines[0]), lines
    m = re.fullmatch(r'  requests     (\d+) = (%s) req/s, 0 errors, (\d+) connections opened'
                     % NUM, lines[1])
    assert m, lines
    assert re.fullmatch(r'  latency us   min %s  p50 %s  p90 %s  p99 %s  p999 %s  max %s  mean %s'
                        % ((NUM,) * 7), lines[2]), lines
    r = result(lines)
    assert r['reqs'] == int(m.group(1)) > 0, r
    assert r['errors'] == 0, r
    assert r['rps'] > 0 and r['window_s'] > 0.9, r
    assert r['p50_us'] <= r['p99_us'] <= r['p999_us'], r
    assert r['conns'] == conns, r
    return r, int(m.group(3))


def backend_of(ctx):
    return 'epoll' if ctx.backend != 'io_uring' else 'io_uring'


def test_ringd_echo_and_http(ctx):
    d = ctx.daemon({'echo': {'listen': 'tcp://127.0.0.1:0'},
                    'http': {'listen': 'tcp://127.0.0.1:0'}})
    echo = url('echo', d.addr('tcp', 'echo'))
    http = url('http', d.addr('tcp', 'http'), '/healthz')
    pid = str(d.target_pid())

    r, opened = load_ok(ctx, echo, '--size', '100', '--server-pid', pid)
    assert r['mode'] == 'echo' and r['size'] == 100 and r['resp_bytes'] == 100, r
    assert opened == 4, opened  # kept for the whole run
    assert r['cpu_us_per_req'] > 0 and r['srv_util'] > 0, r

    r, opened = load_ok(ctx, echo, '--no-keepalive', '--size', '64')
    assert r['mode'] == 'echo-churn' and r['cpu_us_per_req'] == 'NA', r
    assert opened >= r['reqs'], (opened, r)

    r, opened = load_ok(ctx, http, '--server-pid', pid, '--name', 'ka')
    assert r['name'] == 'ka' and r['mode'] == 'http', r
    # ringd closes a connection after 1000 requests, with Connection: close;
    # the count includes the warm-up's (a fifth of the window).
    assert opened <= 4 + 1.5 * r['reqs'] / 1000 + 8, (opened, r)

    r, opened = load_ok(ctx, http, '--no-keepalive', '--server-pid', pid)
    assert r['mode'] == 'http-churn' and opened >= r['reqs'], (opened, r)

    # -n counts exactly; --json is one object.
    for extra in ([], ['--no-keepalive']):
        rc, lines, _ = probe(ctx, '--load', '-c', '3', '-n', '500', '--json',
                             *extra, http)
        assert rc == 0 and len(lines) == 1, (rc, lines)
        j = json.loads(lines[0])
        assert j['requests'] == 500 and j['errors'] == 0, j
        assert j['backend'] == backend_of(ctx), j
        assert j['latency_us']['min'] <= j['latency_us']['p50'] <= j['latency_us']['max'], j
        if not extra:
            assert j['connects'] == 3, j
    d.stop()


def test_nginx_return_200(ctx):
    p, port, _ = start_nginx(ctx, '''        location = /ok { return 200 "ok\\n"; }
        location = /down { return 503; }''')
    try:
        ok = 'http://127.0.0.1:%d/ok' % port
        r, _ = load_ok(ctx, ok, '--server-pid', str(p.pid))
        # nginx works in a child process: its time counts too.
        assert r['cpu_us_per_req'] > 0, r
        load_ok(ctx, ok, '--no-keepalive')
        down = 'http://127.0.0.1:%d/down' % port
        rc, lines, _ = probe(ctx, '--load', '-c', '2', '-n', '20', down)
        assert rc == 2, (rc, lines)
        assert result(lines)['errors'] == 20, lines
        assert '  first error  503, expected 200-399, in ' in '\n'.join(lines), lines
    finally:
        stop_group(p)


def flip_one_byte(c):
    """Echoes everything with its first byte changed, until the close."""
    while True:
        got = c.recv(65536)
        if not got:
            return
        c.sendall(bytes([got[0] ^ 1]) + got[1:])


def test_wrong_servers_fail_the_load(ctx):
    bad = Listener(ctx, flip_one_byte)
    target = 'echo://127.0.0.1:%d' % bad.port
    for extra in ([], ['--no-keepalive']):
        rc, lines, _ = probe(ctx, '--load', '-c', '2', '-n', '20', *extra, target)
        assert rc == 2, (rc, lines)
        r = result(lines)
        assert r['errors'] == 20 and r['reqs'] == 0, r
        assert '  first error  echo reply differs at byte 0' in lines, lines
    # Nothing listens: every try is refused, -d ends it all the same.
    dead = 'echo://127.0.0.1:%d' % free_port()
    rc, lines, _ = probe(ctx, '--load', '-c', '2', '-d', '300ms', '--json', dead)
    assert rc == 2, (rc, lines)
    j = json.loads(lines[0])
    assert j['errors'] > 0 and j['requests'] == 0, j
    assert j['first_error'] == 'connection refused', j


def http_server(response, close=False):
    """A handler answering every request head on the connection with
    response; close: closes after each response instead."""
    def h(c):
        buf = b''
        while True:
            got = c.recv(65536)
            if not got:
                return
            buf += got
            while b'\r\n\r\n' in buf:
                _, buf = buf.split(b'\r\n\r\n', 1)
                c.sendall(response)
                if close:
                    c.close()
                    return
    return h


def load_json(ctx, target, *args):
    rc, lines, _ = probe(ctx, '--load', '-c', '2', '-n', '200', '--json', *args, target)
    assert len(lines) == 1, (rc, lines)
    return rc, json.loads(lines[0])


def test_http_framing_and_reuse(ctx):
    chunked = Listener(ctx, http_server(
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'2\r\nok\r\n3;x=y\r\n!!\n\r\n0\r\n\r\n'))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % chunked.port)
    # Chunks tell the end: both connections carry all 200 requests.
    assert rc == 0 and j['requests'] == 200 and j['connects'] == 2, j

    old = Listener(ctx, http_server(
        b'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', close=True))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % old.port)
    # HTTP/1.0 without keep-alive: a new connection for every request.
    assert rc == 0 and j['requests'] == 200 and j['connects'] >= 200, j

    closing = Listener(ctx, http_server(
        b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % closing.port)
    # Heeded at once, before the server's close would say it.
    assert rc == 0 and j['requests'] == 200 and j['connects'] >= 200, j
    closing = Listener(ctx, http_server(
        b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive,\tclose\r\n\r\nok'))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % closing.port)
    # A tab is whitespace in a list too (RFC 9110 section 5.6.1).
    assert rc == 0 and j['requests'] == 200 and j['connects'] >= 200, j

    extra = Listener(ctx, http_server(
        b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXYZ'))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % extra.port)
    assert rc == 2 and j['requests'] == 0 and j['errors'] == 200, j
    assert j['first_error'] == '200, 3 bytes after the body', j
    # The same after a chunked body, and after a HEAD response's head.
    extra = Listener(ctx, http_server(
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
        b'2\r\nok\r\n0\r\n\r\nXYZ'))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % extra.port)
    assert rc == 2 and j['requests'] == 0 and j['errors'] == 200, j
    assert j['first_error'] == '200, 3 bytes after the body', j
    extra = Listener(ctx, http_server(
        b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % extra.port, '--method', 'HEAD')
    assert rc == 2 and j['requests'] == 0 and j['errors'] == 200, j
    assert j['first_error'] == '200, 2 bytes after the body', j

    # --no-keepalive waits for the close Connection: close asks for; a
    # server that never closes fails each request once -t runs out.
    stays = Listener(ctx, http_server(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'))
    rc, lines, _ = probe(ctx, '--load', '-c', '2', '-n', '2', '-t', '300ms',
                         '--no-keepalive', '--json', 'http://127.0.0.1:%d/' % stays.port)
    j = json.loads(lines[0])
    assert rc == 2 and j['requests'] == 0 and j['errors'] == 2, j
    assert j['first_error'].startswith(
        'reply complete, but the server did not close the connection'), j

    unframed = Listener(ctx, http_server(b'HTTP/1.1 200 OK\r\n\r\nok', close=True))
    rc, j = load_json(ctx, 'http://127.0.0.1:%d/' % unframed.port)
    # The body ends at the close: correct, if not reusable.
    assert rc == 0 and j['requests'] == 200 and j['connects'] >= 200, j


def nofile(soft, hard):
    """A preexec_fn that sets RLIMIT_NOFILE to soft/hard."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_load_raises_nofile(ctx):
    """-c past the soft RLIMIT_NOFILE raises it as far as the hard one
    allows; past the hard one the load does not start."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 256:
        raise harness.Skip('RLIMIT_NOFILE hard limit %d < 256' % hard)
    d = ctx.daemon({'echo': {'listen': 'tcp://127.0.0.1:0'}})
    echo = url('echo', d.addr('tcp', 'echo'))
    # 150 connections and the margin fit under 256, not under 64.
    rc, lines, _ = probe(ctx, '--load', '-c', '150', '-n', '300', '--json', echo,
                         preexec=nofile(64, 256))
    assert rc == 0 and len(lines) == 1, (rc, lines)
    j = json.loads(lines[0])
    assert j['requests'] == 300 and j['errors'] == 0 and j['connects'] == 150, j
    rc, lines, _ = probe(ctx, '--load', '-c', '150', '-n', '300', echo,
                         preexec=nofile(64, 100))
    assert (rc, lines) == (3, [
        'UNKNOWN - ringd-probe: usage: -c 150 needs 182 file descriptors, '
        'over the hard RLIMIT_NOFILE of 100']), (rc, lines)
    d.stop()


def test_load_usage_errors(ctx):
    for args, want in [
            (['--load', '-d', '1', 'daytime://127.0.0.1:1'],
             'UNKNOWN - ringd-probe: --load drives echo:// and http:// targets: '
             'daytime://127.0.0.1:1'),
            (['--load', '-c', '2', 'echo://127.0.0.1:1'],
             'UNKNOWN - ringd-probe: usage: --load wants one of -d DURATION and -n REQUESTS'),
            (['--load', '-d', '1', 'echo+udp://127.0.0.1:1'],
             'UNKNOWN - ringd-probe: --load drives echo:// and http:// targets: '
             'echo+udp://127.0.0.1:1'),
            (['--load', '-d', '1', '--server-pid', '1073741823', 'echo://127.0.0.1:1'],
             'UNKNOWN - ringd-probe: --server-pid 1073741823: no such process')]:
        rc, lines, _ = probe(ctx, *args)
        assert (rc, lines) == (3, [want]), (args, rc, lines)


if __name__ == '__main__':
    test_probe.main([
        test_ringd_echo_and_http,
        test_nginx_return_200,
        test_wrong_servers_fail_the_load,
        test_http_framing_and_reuse,
        test_load_raises_nofile,
        test_load_usage_errors,
    ])
