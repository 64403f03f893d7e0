#!/usr/bin/env python3
"""The http plugin from outside, on every engine variant: real clients
nobody here wrote (tests/integration/http_clients.py wraps each of them
and lists their quirks), status codes on the wire with raw bytes, routes
from the INI, /metrics after traffic, draining, the limits, a slowloris
and a seeded fuzz-lite of bad input. Every ringd instance listens on
127.0.0.1:0; every external process is bounded and killed by its PID."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import harness
import http_clients as hc

HOST = '127.0.0.1'


# -- helpers ------------------------------------------------------------------

def http_daemon(ctx, http=None, ringd=None, extra=None, **kw):
    keys = {'plugin': 'http', 'listen': 'tcp://127.0.0.1:0'}
    keys.update(http or {})
    svcs = {'http': keys}
    svcs.update(extra or {})
    return ctx.daemon(services=svcs, ringd=ringd, **kw)


def port_of(d, svc='http'):
    return d.addr('tcp', svc=svc).port


def routes(*lines):
    """A repeated `route =` key: harness.ini writes one 'key = value' line
    per dict item, so the later lines ride on the value."""
    return '\nroute = '.join(lines)


def scrape(port):
    status, headers, body = hc.http_get(port, '/metrics')
    assert status == 200, (status, body[:500])
    return hc.parse_prometheus_text(body.decode()), body


def sample(m, name, **labels):
    """The value of one series; labels in any order."""
    want = set('%s="%s"' % kv for kv in labels.items())
    for k, v in m.items():
        n, _, rest = k.partition('{')
        if n != name:
            continue
        got = set(rest.rstrip('}').split(',')) if rest else set()
        got.discard('')
        if got == want:
            return v
    return None


def one_header(r, name):
    vals = r.headers.get(name.lower(), [])
    assert len(vals) == 1, 'want exactly one %s, got %r in %r' % (name, vals, r.fields)
    return vals[0]


def exchange(port, data, timeout=5.0):
    """Send data, half-close nothing, read to EOF: the raw bytes (for exact
    byte counts). The request must say Connection: close."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(data)
        return harness.recv_until_eof(s, deadline=time.monotonic() + timeout)
    finally:
        s.close()


def req(path='/healthz', method='GET', host='x', extra=b'', version='1.1'):
    h = b'Host: %s\r\n' % host.encode() if host is not None else b''
    return (b'%s %s HTTP/%s\r\n' % (method.encode(), path.encode(), version.encode())
            + h + extra + b'\r\n')


def get(port, data, **kw):
    """raw_request() for an answer on a connection that stays open: wait
    only briefly for a close after the last response (a close that comes
    ends the wait at once)."""
    kw.setdefault('close_wait', 0.05)
    return hc.raw_request(port, data, **kw)


def assert_framing_error(r, status, what):
    """The status, Connection: close, then a clean FIN: the whole response
    was readable, no reset."""
    assert r.status == status, '%s: want %d, got %r (closed=%s reset=%s leftover=%r)' % (
        what, status, r.status_line, r.closed, r.reset, r.leftover[:200])
    assert not r.reset, '%s: connection reset after the %d' % (what, status)
    assert r.send_error is None, '%s: reset while sending: %s' % (what, r.send_error)
    assert r.closed, '%s: connection not closed after a framing error' % what
    assert 'close' in ','.join(r.headers.get('connection', [])).lower(), \
        '%s: no Connection: close in %r' % (what, r.fields)
    assert len(r.responses) == 1, '%s: %d responses' % (what, len(r.responses))


# -- real clients -------------------------------------------------------------

def test_curl(ctx):
    d = http_daemon(ctx)
    p = port_of(d)
    g = hc.curl_get(p, '/healthz')
    assert g.exit == 0 and g.code == 200 and g.body == b'ok\n', g
    assert g.http_version == '1.1', g
    h = hc.curl_head(p, '/healthz')
    assert h.exit == 0 and h.code == 200, h
    # HEAD: the same head as GET (but Date), no body on the wire.
    rg = get(p, req('/healthz'))
    rh = get(p, req('/healthz', 'HEAD'), close_wait=0.5)
    assert rg.status == rh.status == 200, (rg, rh)
    strip = lambda fields: [(n.lower(), v) for n, v in fields if n.lower() != 'date']
    assert strip(rg.fields) == strip(rh.fields), (rg.fields, rh.fields)
    assert one_header(rh, 'Content-Length') == str(len(rg.body)), rh.fields
    assert rh.leftover == b'' and rh.body == b'', 'HEAD sent a body: %r' % rh.leftover
    assert one_header(rg, 'Cache-Control') == 'no-store'
    one_header(rg, 'Content-Type')
    one_header(rg, 'Date')
    # HTTP/1.0: answered, and closed (curl sends no Connection header).
    o = hc.curl_http10(p, '/healthz')
    assert o.exit == 0 and o.code == 200 and o.body == b'ok\n', o
    r10 = get(p, req('/healthz', version='1.0', host=None))
    assert r10.status == 200 and r10.closed, r10
    # Reuse: three URLs, one connection.
    u = hc.curl_reuse(p, ('/healthz', '/readyz', '/metrics'))
    assert u.exit == 0 and u.codes == [200, 200, 200] and u.reused, u
    d.stop()


def test_wget(ctx):
    d = http_daemon(ctx)
    w = hc.wget(port_of(d), '/readyz')
    assert w.exit == 0 and w.status == 200 and w.body == b'ready\n', w
    w = hc.wget(port_of(d), '/nope')
    assert w.exit == 8 and w.status == 404, w
    d.stop()


def test_http_client_keepalive(ctx):
    d = http_daemon(ctx)
    r = hc.http_client_keepalive(port_of(d))
    assert r.statuses == [200, 200, 200, 200] and r.reused, r
    assert r.responses[0].version == 11
    d.stop()


def test_ab_keepalive(ctx):
    d = http_daemon(ctx)
    p = port_of(d)
    n, c = 2000, 10
    r = hc.ab(p, '/healthz', n=n, c=c, keepalive=True)
    assert r.exit == 0 and r.complete == n and r.failed == 0 and r.non_2xx == 0, r
    assert r.keepalive_requests == n, 'ab counted %d keep-alive of %d: %r' % (
        r.keepalive_requests, n, r)
    m, _ = scrape(p)
    acc = sample(m, 'ringd_connections_accepted_total', service='http', transport='tcp')
    # ab's c connections (plus one it may open for a 'first' check), and ours.
    assert acc <= c + 2, 'ab -k used %s connections for %d requests' % (acc, n)
    assert sample(m, 'ringd_http_requests_total', service='http', route='/healthz') == n
    d.stop()


def test_wrk(ctx):
    d = http_daemon(ctx)
    r = hc.wrk(port_of(d), '/healthz', conns=20, duration='1s')
    assert r.exit == 0 and r.requests and r.requests > 100, r
    assert r.socket_errors == {'connect': 0, 'read': 0, 'write': 0, 'timeout': 0}, r
    assert r.non_2xx_3xx == 0, r
    print('  wrk: %d requests, %.0f req/s, p99 %s s' % (r.requests, r.rps or 0,
                                                       r.latency.get(99)))
    d.stop()


def test_h2load_pipelined(ctx):
    d = http_daemon(ctx)
    n = 4000
    r = hc.h2load(port_of(d), '/healthz', n=n, c=4, m=8)
    assert r.exit == 0 and r.protocol == 'http/1.1', r
    assert r.succeeded == n and r.failed == 0 and r.errored == 0, r
    assert r.status.get('2xx') == n, r
    d.stop()


def test_check_http(ctx):
    d = http_daemon(ctx)
    r = hc.check_http(port_of(d), '/healthz')
    assert r.state == 'OK' and r.status == 200, r
    r = hc.check_http(port_of(d), '/nope')
    assert r.state == 'WARNING' and r.status == 404, r
    d.stop()


def test_htpdate(ctx):
    d = http_daemon(ctx)
    r = hc.htpdate(port_of(d), '/healthz')
    assert r.exit == 0 and r.offset is not None, r
    assert abs(r.offset) <= 1.0, 'htpdate offset %s s' % r.offset
    assert len(r.polls) >= 4, r
    d.stop()


def test_haproxy_httpchk_and_drain(ctx):
    d = http_daemon(ctx, ringd={'drain_delay': '3s'})
    p = port_of(d)
    with hc.HAProxy(p) as ha:
        up = ha.wait_state('UP', 'readyz')
        assert up.check_status == 'L7OK' and up.check_code == 200, up
        dflt = ha.wait_state('UP', 'default')
        assert dflt.check_status == 'L7OK' and dflt.check_code == 200, dflt
        # Through HAProxy's frontend too.
        st, _, body = hc.http_get(ha.port, '/healthz')
        assert st == 200 and body == b'ok\n', (st, body)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        down = ha.wait_state('DOWN', 'readyz', timeout=3.0)
        took = time.monotonic() - t0
        assert down.check_code == 503, down
        assert took < 2.5, 'DOWN %.2f s after SIGTERM, drain_delay 3 s' % took
        # The daemon still accepts: the default check (OPTIONS) stays UP.
        still = ha.server('default')
        assert still.state == 'UP', still
        assert d.alive()
        print('  haproxy: DOWN %.2f s after SIGTERM' % took)
        assert d.wait(15) == 0, d.stderr()


def test_blackbox_http_2xx(ctx):
    d = http_daemon(ctx)
    r = hc.blackbox_probe(port_of(d), '/healthz')
    assert r.success == 1 and r.status_code == 200, '%r\n%s' % (r, r.raw[-3000:])
    d.stop()


def test_promtool_check_metrics(ctx):
    d = http_daemon(ctx, extra={'echo': {'listen': 'tcp://127.0.0.1:0, udp://127.0.0.1:0'}})
    p = port_of(d)
    get(p, req('/nope'))
    get(p, req('/', host=None))
    harness.echo_roundtrip(d.addr('tcp', svc='echo'), b'hello')
    r = hc.promtool_check_url(p)
    assert r.status == 200 and r.ok, '%r\n%s' % (r, r.raw)
    assert r.content_type.startswith('text/plain; version=0.0.4'), r.content_type
    d.stop()


def test_prometheus_scrape_up(ctx):
    d = http_daemon(ctx)
    r = hc.prometheus_up(port_of(d))
    assert r.value == 1.0 and r.health == 'up', '%r\n%s' % (r, r.raw)
    print('  prometheus: up==1 after %.1f s' % r.waited)
    d.stop()


def test_kubelet_probe(ctx):
    d = http_daemon(ctx)
    for path in ('/healthz', '/readyz'):
        r = hc.kubelet_probe(port_of(d), path)
        assert r.status == 200 and r.closed and not r.reset, r
        assert 'close' in one_header(r, 'Connection').lower(), r.fields
        assert not r.leftover, r.leftover
    d.stop()


# -- status codes on the wire -------------------------------------------------

def test_method_status_codes(ctx):
    d = http_daemon(ctx)
    p = port_of(d)
    r = get(p, req('/healthz', 'OPTIONS'))
    assert r.status == 200 and 'GET' in one_header(r, 'Allow'), r.fields
    r = get(p, b'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n')
    assert r.status == 200, r
    r = get(p, b'OPTIONS / HTTP/1.0\r\n\r\n')
    assert r.status == 200, r
    for m in ('POST', 'PUT', 'DELETE', 'PATCH', 'TRACE'):
        r = get(p, req('/healthz', m, extra=b'Content-Length: 0\r\n'))
        assert r.status == 405, (m, r)
        allow = one_header(r, 'Allow')
        assert {'GET', 'HEAD'} <= set(a.strip() for a in allow.split(',')), allow
    for m in ('BREW', 'FOO', 'PROPFINDX'):
        r = get(p, req('/healthz', m))
        assert r.status == 501, (m, r)
    # Absolute-form.
    r = get(p, b'GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    assert r.status == 200 and r.body == b'ok\n', r
    d.stop()


def test_framing_errors_close_cleanly(ctx):
    d = http_daemon(ctx, http={'max_body': '1k'})
    p = port_of(d)
    big = b'a' * 9000
    cases = [
        ('1.1 without Host', b'GET /healthz HTTP/1.1\r\n\r\n', 400),
        ('two Hosts', b'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400),
        ('HTTP/2.0', b'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n', 505),
        ('HTTP/3.1', b'GET /healthz HTTP/3.1\r\nHost: x\r\n\r\n', 505),
        ('h2 preface', b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505),
        ('request line > 8 KiB', req('/' + 'a' * 9000), 414),
        ('field > 8 KiB', req(extra=b'X-Big: ' + big + b'\r\n'), 431),
        ('head > 32 KiB', req(extra=b''.join(b'X-F%d: %s\r\n' % (i, b'b' * 1000)
                                             for i in range(40))), 431),
        ('101 fields', req(extra=b''.join(b'X-F%d: v\r\n' % i for i in range(101))), 431),
        ('body over max_body', req(extra=b'Content-Length: 2000\r\n') + b'z' * 2000, 413),
        ('body over max_body, head only', req(extra=b'Content-Length: 5000\r\n'), 413),
        ('2 MiB upload over max_body', req(extra=b'Content-Length: 2097152\r\n')
         + b'u' * 2097152, 413),
        ('chunked over max_body', req(extra=b'Transfer-Encoding: chunked\r\n')
         + b'400\r\n' + b'c' * 1024 + b'\r\n' + b'1\r\nc\r\n0\r\n\r\n', 413),
        ('TE gzip', req(extra=b'Transfer-Encoding: gzip\r\n'), 501),
        ('TE gzip, chunked', req(extra=b'Transfer-Encoding: gzip, chunked\r\n'), 501),
        ('TE chunked, chunked', req(extra=b'Transfer-Encoding: chunked, chunked\r\n')
         + b'0\r\n\r\n', 400),
        ('TE chunked twice', req(extra=b'Transfer-Encoding: chunked\r\n'
                                 b'Transfer-Encoding: chunked\r\n') + b'0\r\n\r\n', 400),
        ('CL and TE', req(extra=b'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n')
         + b'0\r\n\r\n', 400),
        ('conflicting CLs', req(extra=b'Content-Length: 1\r\nContent-Length: 2\r\n') + b'zz',
         400),
        ('whitespace before colon', b'GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n', 400),
        ('obs-fold', req(extra=b'X-A: a\r\n b\r\n'), 400),
        ('bare CR in a field', req(extra=b'X-A: a\rb\r\n'), 400),
        ('bare CR line end', b'GET /healthz HTTP/1.1\rHost: x\r\n\r\n', 400),
        ('NUL in a value', req(extra=b'X-A: a\x00b\r\n'), 400),
        ('NUL in the target', b'GET /heal\x00thz HTTP/1.1\r\nHost: x\r\n\r\n', 400),
        ('bad chunk size', req(extra=b'Transfer-Encoding: chunked\r\n') + b'zz\r\n', 400),
    ]
    failures = []
    for what, data, status in cases:
        # A pipelined request after the bad one must not be answered.
        r = get(p, data + req('/healthz'), expect=1, close_wait=1.0)
        try:
            assert_framing_error(r, status, what)
        except AssertionError as e:
            failures.append(str(e))
    assert not failures, '\n'.join(failures)
    assert get(p, req('/healthz')).status == 200
    d.stop()


def test_pipelined_in_order(ctx):
    d = http_daemon(ctx, http={'route': routes('/a body="A"', '/b body="B"')})
    p = port_of(d)
    data = (req('/a') + req('/b') + req('/nope') + req('/a', 'HEAD') + req('/b?q=1')
            + req('/healthz'))
    r = get(p, data)
    got = [(x.status, x.body) for x in r.responses]
    assert got == [(200, b'A'), (200, b'B'), (404, r.responses[2].body), (200, b''),
                   (200, b'B'), (200, b'ok\n')], got
    assert not r.timed_out and r.leftover == b'', r
    # A client that pipelines /metrics faster than it reads: every answer
    # comes, in order (the plugin holds its input meanwhile).
    n = 300
    s = socket.create_connection((HOST, p), timeout=10)
    s.sendall(req('/metrics') * n + req('/healthz', extra=b'Connection: close\r\n'))
    raw = harness.recv_until_eof(s, deadline=time.monotonic() + 30)
    s.close()
    rs, rest = hc._parse_responses(raw, [False] * (n + 1), True)
    assert len(rs) == n + 1 and rest == b'', (len(rs), rest[:200])
    assert all(x.status == 200 and b'ringd_build_info' in x.body for x in rs[:n])
    assert rs[n].body == b'ok\n'
    # Connection: close: a request pipelined after it is not answered.
    r = get(p, req('/a', extra=b'Connection: close\r\n') + req('/b'), expect=1, close_wait=1)
    assert [x.body for x in r.responses] == [b'A'] and r.closed and not r.leftover, r
    d.stop()


def test_expect_100_continue(ctx):
    d = http_daemon(ctx)
    s = harness.connect(d.addr('tcp', svc='http'), timeout=5)
    s.sendall(req('/healthz', 'GET', extra=b'Content-Length: 5\r\nExpect: 100-continue\r\n'))
    buf = b''
    while b'\r\n\r\n' not in buf:
        b = s.recv(4096)
        assert b, 'EOF before 100 Continue: %r' % buf
        buf += b
    head, _, rest = buf.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 100'), head
    assert rest == b'', 'final response before the body was sent: %r' % rest
    s.sendall(b'hello' + req('/readyz'))
    buf = b''
    deadline = time.monotonic() + 5
    while buf.count(b'HTTP/1.1 200') < 2 or not buf.endswith(b'ready\n'):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        b = s.recv(4096)
        assert b, 'EOF: %r' % buf
        buf += b
    assert buf.startswith(b'HTTP/1.1 200') and b'ok\n' in buf, buf
    s.close()
    d.stop()


def test_chunked_body_discarded(ctx):
    d = http_daemon(ctx)
    p = port_of(d)
    body = (b'5;name=value;x="q s"\r\nhello\r\n'
            b'a\r\n0123456789\r\n'
            b'0;last\r\nX-Trailer: 1\r\nX-Other: two\r\n\r\n')
    data = req('/healthz', extra=b'Transfer-Encoding: chunked\r\n') + body + req('/readyz')
    r = get(p, data)
    assert [x.status for x in r.responses] == [200, 200], r
    assert [x.body for x in r.responses] == [b'ok\n', b'ready\n'], r.responses
    # Content-Length bodies too.
    data = req('/healthz', extra=b'Content-Length: 7\r\n') + b'GET / X' + req('/readyz')
    r = get(p, data, expect=2)
    assert [x.body for x in r.responses] == [b'ok\n', b'ready\n'], r.responses
    d.stop()


def test_request_split_into_single_bytes(ctx):
    d = http_daemon(ctx)
    s = harness.connect(d.addr('tcp', svc='http'), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = req('/healthz', extra=b'User-Agent: bytewise\r\nConnection: close\r\n')
    for i in range(len(data)):
        s.send(data[i:i + 1])
        time.sleep(0.01)
    got = harness.recv_until_eof(s, deadline=time.monotonic() + 5)
    s.close()
    assert got.startswith(b'HTTP/1.1 200 ') and got.endswith(b'\r\n\r\nok\n'), got
    d.stop()


# -- routes ---------------------------------------------------------------------

def test_routes(ctx):
    tmp = ctx.tempdir()
    page = os.path.join(tmp, 'maint.html')
    with open(page, 'w') as f:
        f.write('<p>down for maintenance</p>\n')
    gone = os.path.join(tmp, 'gone.txt')
    with open(gone, 'wb') as f:
        f.write(b'loaded at start\n')
    route_lines = [
        '/version 200 type=text/plain body="ringd 0.1.0\\n"',
        '/old/* 301 header="Location: /new" header="X-Extra: one two"',
        '/maint* 503 type=text/html file=%s header="Retry-After: 120"' % page,
        '/gone file=%s' % gone,
        '/teapot 418 body="short and stout"',
        '/whoami reflect',
        '/ping 204',
    ]
    d = http_daemon(ctx, http={'route': routes(*route_lines)})
    p = port_of(d)
    os.unlink(gone)
    r = get(p, req('/version'))
    assert r.status == 200 and r.body == b'ringd 0.1.0\n', r
    assert one_header(r, 'Content-Type') == 'text/plain'
    r = get(p, req('/version?x=1&y=2'))
    assert r.status == 200 and r.body == b'ringd 0.1.0\n', 'query took part: %r' % r
    r = get(p, req('/version/'))
    assert r.status == 404, 'exact route matched a longer path: %r' % r
    for path in ('/old/', '/old/a/b?c=d'):
        r = get(p, req(path))
        assert r.status == 301, (path, r)
        assert one_header(r, 'Location') == '/new'
        assert one_header(r, 'X-Extra') == 'one two'
    r = get(p, req('/old'))
    assert r.status == 404, '/old/* matched /old: %r' % r
    for path in ('/maint', '/maintenance/x'):
        r = get(p, req(path))
        assert r.status == 503 and r.body == b'<p>down for maintenance</p>\n', (path, r)
        assert one_header(r, 'Content-Type') == 'text/html'
        assert one_header(r, 'Retry-After') == '120'
    r = get(p, req('/gone'))
    assert r.status == 200 and r.body == b'loaded at start\n', 'deleted file: %r' % r
    r = get(p, req('/teapot'))
    assert r.status == 418 and r.body == b'short and stout', r
    r = get(p, req('/ping'))
    assert r.status == 204 and r.body == b'' and 'content-length' not in r.headers, r
    for path in ('/nope', '/versio', '/VERSION', '/%76ersion'):
        r = get(p, req(path))
        assert r.status == 404, (path, r)
    # HEAD on a route: the same head, no body.
    r = get(p, req('/maint', 'HEAD'), close_wait=0.5)
    assert r.status == 503 and r.leftover == b'', r
    assert one_header(r, 'Content-Length') == str(len('<p>down for maintenance</p>\n'))
    # reflect, as text ...
    s = socket.create_connection((HOST, p), timeout=5)
    local = '%s:%d' % s.getsockname()
    s.sendall(req('/whoami?a=b', extra=b'X-Probe: hello world\r\nAccept: text/plain\r\n'
                  b'Connection: close\r\n'))
    raw = harness.recv_until_eof(s, deadline=time.monotonic() + 5)
    s.close()
    head, _, body = raw.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200 '), raw
    text = body.decode()
    assert local in text, 'peer %s not in %r' % (local, text)
    assert 'GET /whoami?a=b HTTP/1.1' in text, text
    assert 'X-Probe: hello world' in text and 'Host: x' in text, text
    # ... and as JSON.
    r = get(p, req('/whoami', extra=b'Accept: application/json\r\n'
                              b'X-Probe: "quoted"\\back\r\n'))
    assert r.status == 200, r
    assert 'json' in one_header(r, 'Content-Type'), r.fields
    obj = json.loads(r.body.decode())
    flat = json.dumps(obj)
    assert 'GET' in flat and '/whoami' in flat and '127.0.0.1' in flat, obj
    assert '"quoted"\\back' in json.dumps(obj, ensure_ascii=False) or \
        any('"quoted"\\back' in str(v) for v in _walk(obj)), obj
    d.stop()


def _walk(o):
    if isinstance(o, dict):
        for v in o.values():
            yield from _walk(v)
    elif isinstance(o, list):
        for v in o:
            yield from _walk(v)
    else:
        yield o


def test_route_config_errors(ctx):
    tmp = ctx.tempdir()
    unreadable = os.path.join(tmp, 'missing.txt')
    lines = ['[ringd]',                                              # 1
             'workers = 1',                                          # 2
             '',                                                     # 3
             '[http]',                                               # 4
             'listen = tcp://127.0.0.1:0',                           # 5
             'route = /ok 200 body="fine"',                          # 6
             'route = /bad 299',                                     # 7
             'route = /ok2 header="X-A: fine"',                      # 8
             'route = /crlf header="X-A: a\\r\\nX-B: b"',            # 9
             'route = /lf header="X-A: a\\nb"',                      # 10
             'route = /file file=%s' % unreadable,                   # 11
             'route = /ok3 404']                                     # 12
    conf = os.path.join(tmp, 'bad.ini')
    with open(conf, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    r = ctx.run(['-t', '-c', conf])
    out = r.stdout + r.stderr
    assert r.returncode == 1, (r.returncode, out)
    for line, word in ((7, '299'), (9, 'X-A'), (10, 'X-A'), (11, unreadable)):
        pre = '%s:%d:' % (conf, line)
        hits = [l for l in out.splitlines() if l.startswith(pre)]
        assert hits and word in hits[0], 'no %s error naming %s in:\n%s' % (pre, word, out)
    for line in (6, 8, 12):
        assert '%s:%d:' % (conf, line) not in out, 'error on good line %d:\n%s' % (line, out)
    # One error alone, each: exit 1 and its line.
    for bad, word in (('route = /x 700', '700'), ('route = /x header="X: \\x0d"', 'X'),
                      ('route = /x file=/nonexistent/dir/f', '/nonexistent/dir/f')):
        conf1 = os.path.join(tmp, 'one.ini')
        with open(conf1, 'w') as f:
            f.write('[http]\nlisten = tcp://127.0.0.1:0\n%s\n' % bad)
        r = ctx.run(['-t', '-c', conf1])
        out = r.stdout + r.stderr
        assert r.returncode == 1, (bad, r.returncode, out)
        assert any(l.startswith('%s:3:' % conf1) and word in l for l in out.splitlines()), \
            (bad, out)
    # A body file that is not a regular file.
    conf3 = os.path.join(tmp, 'dir.ini')
    with open(conf3, 'w') as f:
        f.write('[http]\nlisten = tcp://127.0.0.1:0\n\nroute = /d file=%s\n' % tmp)
    r = ctx.run(['-t', '-c', conf3])
    assert r.returncode == 1 and '%s:4:' % conf3 in r.stdout + r.stderr, \
        (r.returncode, r.stdout + r.stderr)
    # A literal CR byte in a header value inside the file.
    conf2 = os.path.join(tmp, 'cr.ini')
    with open(conf2, 'wb') as f:
        f.write(b'[http]\nlisten = tcp://127.0.0.1:0\nroute = /x header="X-A: a\rb"\n')
    r = ctx.run(['-t', '-c', conf2])
    assert r.returncode == 1, (r.returncode, r.stdout + r.stderr)
    assert '%s:3:' % conf2 in r.stdout + r.stderr, r.stdout + r.stderr


# -- metrics ----------------------------------------------------------------------

def test_metrics_after_traffic(ctx):
    d = http_daemon(ctx, http={'route': routes('/v body="v"', '/p/* 202')})
    p = port_of(d)
    sent = got = 0
    plan = ([req('/healthz', extra=b'Connection: close\r\n')] * 5
            + [req('/nope', extra=b'Connection: close\r\n')] * 3
            + [req('/v', extra=b'Connection: close\r\n')] * 2
            + [req('/p/x', extra=b'Connection: close\r\n')] * 4
            + [req('/readyz', 'HEAD', extra=b'Connection: close\r\n')]
            + [req('/healthz', host=None)])                 # 400, closed by us
    for data in plan:
        raw = exchange(p, data)
        assert raw.startswith(b'HTTP/1.1 '), raw
        sent += len(data)
        got += len(raw)
    # One keep-alive connection with three requests, then the scrape on it.
    s = socket.create_connection((HOST, p), timeout=5)
    for _ in range(3):
        data = req('/v')
        s.sendall(data)
        buf = b''
        while not buf.endswith(b'\r\n\r\nv'):
            b = s.recv(4096)
            assert b, buf
            buf += b
        sent += len(data)
        got += len(buf)
    want = {
        ('ringd_http_responses_total', '200'): 5 + 2 + 1 + 3,
        ('ringd_http_responses_total', '202'): 4,
        ('ringd_http_responses_total', '404'): 3,
        ('ringd_http_responses_total', '400'): 1,
        ('ringd_http_responses_total', '503'): 0,
        ('ringd_http_requests_total', '/healthz'): 5,
        ('ringd_http_requests_total', '/readyz'): 1,
        ('ringd_http_requests_total', '/v'): 5,
        ('ringd_http_requests_total', '/p/*'): 4,
        ('ringd_http_requests_total', 'none'): 4,
        ('ringd_http_requests_total', '/metrics'): 0,
    }
    closed_conns = len(plan)
    deadline = time.monotonic() + 5
    while True:
        scrape_req = req('/metrics')
        s.sendall(scrape_req)
        buf = b''
        while b'\r\n\r\n' not in buf:
            buf += s.recv(65536)
        head, _, body = buf.partition(b'\r\n\r\n')
        n = int([l for l in head.split(b'\r\n') if l.lower().startswith(b'content-length:')
                 ][0].split(b':')[1])
        while len(body) < n:
            body += s.recv(65536)
        m = hc.parse_prometheus_text(body.decode())
        closed = sum(sample(m, 'ringd_connections_closed_total', service='http',
                            transport='tcp', reason=r) or 0
                     for r in ('peer', 'service', 'idle', 'deadline', 'reset', 'stop'))
        if closed >= closed_conns or time.monotonic() > deadline:
            break
        sent += len(scrape_req)
        got += len(buf)
        want[('ringd_http_responses_total', '200')] += 1
        want[('ringd_http_requests_total', '/metrics')] += 1
        time.sleep(0.1)
    sent += len(scrape_req)     # received before the scrape was written
    errs = []
    for (fam, lab), v in want.items():
        key = 'code' if fam.endswith('responses_total') else 'route'
        g = sample(m, fam, service='http', **{key: lab})
        if g != v:
            errs.append('%s{%s="%s"} = %s, want %s' % (fam, key, lab, g, v))
    svc = {'service': 'http', 'transport': 'tcp'}
    for fam, v in (('ringd_connections_accepted_total', len(plan) + 1),
                   ('ringd_connections_active', 1),
                   ('ringd_connections_closed_total', closed_conns),
                   ('ringd_received_bytes_total', sent),
                   ('ringd_sent_bytes_total', got)):
        if fam == 'ringd_connections_closed_total':
            g = closed
        else:
            g = sample(m, fam, **svc)
        if g != v:
            errs.append('%s = %s, want %s' % (fam, g, v))
    # The 400 is closed by the service; the rest by the peer (us) or the service.
    if sample(m, 'ringd_connections_closed_total', reason='reset', **svc):
        errs.append('resets counted: %s' % sample(m, 'ringd_connections_closed_total',
                                                  reason='reset', **svc))
    info = [k for k in m if k.startswith('ringd_build_info{')]
    if len(info) != 1 or 'backend="%s"' % d.expected_engine() not in info[0]:
        errs.append('build_info %r' % info)
    for fam, v in (('ringd_draining', 0), ('ringd_workers', 2)):
        if sample(m, fam) != v:
            errs.append('%s = %s' % (fam, sample(m, fam)))
    for fam in ('process_cpu_seconds_total', 'process_resident_memory_bytes',
                'process_open_fds', 'process_max_fds', 'process_start_time_seconds'):
        if not sample(m, fam):
            errs.append('%s missing or 0' % fam)
    s.close()
    assert not errs, '\n'.join(errs) + '\n' + body.decode()
    d.stop()


# -- drain ------------------------------------------------------------------------

def test_drain(ctx):
    # One worker: with two, the busy connection's worker may begin its
    # stop after the idle one's FIN is seen, and answer the request
    # before it heard of the drain (keep-alive, then a FIN).
    d = http_daemon(ctx, ringd={'drain_delay': '2s', 'workers': '1'})
    p = port_of(d)
    idle = socket.create_connection((HOST, p), timeout=5)
    idle.sendall(req('/healthz'))
    r = b''
    while not r.endswith(b'ok\n'):
        r += idle.recv(4096)
    busy = socket.create_connection((HOST, p), timeout=5)
    busy.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n')    # head not finished
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    time.sleep(0.2)
    seen = []
    while time.monotonic() - t0 < 1.6:
        ry = get(p, req('/readyz'), timeout=2)
        rh = get(p, req('/healthz'), timeout=2)
        seen.append((ry.status, rh.status))
        time.sleep(0.1)
    assert seen and all(x == (503, 200) for x in seen), seen
    # The stop: the idle keep-alive connection gets a FIN and nothing else.
    idle.settimeout(5)
    try:
        tail = idle.recv(4096)
    except ConnectionResetError:
        tail = 'reset'
    t_fin = time.monotonic() - t0
    assert tail == b'', 'idle keep-alive connection at the stop: %r' % tail
    assert 1.8 <= t_fin < 4.5, 'idle closed %.2f s after SIGTERM (drain_delay 2 s)' % t_fin
    # The request in progress is answered, with Connection: close, then FIN.
    busy.sendall(b'\r\n')
    raw = harness.recv_until_eof(busy, deadline=time.monotonic() + 5)
    head, _, body = raw.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200') and body == b'ok\n', raw
    assert b'\r\nconnection: close' in head.lower(), head
    idle.close()
    busy.close()
    assert d.wait(10) == 0, d.stderr()


# -- limits -----------------------------------------------------------------------


def test_drain_body_in_progress(ctx):
    """Stop with a request whose head is in and whose body is not: the
    rest of the body, sent after the stop, completes the request, which
    is answered with Connection: close, then FIN; no reset."""
    d = http_daemon(ctx, ringd={'drain_delay': '1s', 'shutdown_timeout': '4s',
                                'workers': '1'})
    p = port_of(d)
    idle = socket.create_connection((HOST, p), timeout=8)
    upload = socket.create_connection((HOST, p), timeout=8)
    upload.sendall(req('/readyz', extra=b'Content-Length: 5\r\n') + b'ab')
    time.sleep(0.2)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert idle.recv(16) == b'', 'idle connection at the stop'
    idle.close()
    upload.sendall(b'cde')
    try:
        raw = harness.recv_until_eof(upload, deadline=time.monotonic() + 6)
    except ConnectionResetError:
        raise AssertionError('reset %.2f s after SIGTERM instead of an answer (drain_delay '
                             '1 s, shutdown_timeout 4 s)' % (time.monotonic() - t0))
    finally:
        upload.close()
        d.wait(15)
    head, _, rest = raw.partition(b'\r\n\r\n')
    # The answer was decided when its head came in, before the drain: 200
    # ready. Its body finished after the stop, so it is the last one.
    assert head.startswith(b'HTTP/1.1 200') and rest == b'ready\n', raw
    assert b'\r\nconnection: close' in head.lower(), head
    assert d.returncode == 0, d.stderr()

def trickle_until_closed(s, data, t0, every=0.2, limit=4.0):
    """Send data a byte every `every` s until the server closes: (seconds
    from t0 to the close or None, what came back)."""
    got = b''
    for i in range(len(data)):
        try:
            s.send(data[i:i + 1])
        except OSError:
            return time.monotonic() - t0, got
        s.settimeout(every)
        try:
            b = s.recv(4096)
            got += b
            if not b:
                return time.monotonic() - t0, got
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - t0, got
        if time.monotonic() - t0 > limit:
            break
    return None, got


def test_header_timeout_is_a_deadline(ctx):
    d = http_daemon(ctx, http={'header_timeout': '1s', 'keepalive_timeout': '5s'})
    addr = d.addr('tcp', svc='http')

    def conn():
        s = harness.connect(addr, timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s
    # The first head, trickled from the connection's start.
    s = conn()
    t, got = trickle_until_closed(s, b'GET /' + b'a' * 100, time.monotonic())
    s.close()
    assert t is not None, 'still open after 4 s of trickling, header_timeout 1 s'
    assert 0.8 <= t <= 2.0, 'closed after %.2f s, header_timeout 1 s' % t
    assert not got or got.startswith(b'HTTP/1.1 4'), got
    print('  header_timeout: first head closed after %.2f s (%r)' % (t, got[:40]))
    # A body trickled after its head: the same deadline from the head's end.
    s = conn()
    s.sendall(req('/healthz', extra=b'Content-Length: 100\r\n'))
    t, got = trickle_until_closed(s, b'b' * 100, time.monotonic())
    s.close()
    assert t is not None and 0.8 <= t <= 2.0, 'body trickle closed after %s s' % t
    # The second head on a keep-alive connection: from its first byte.
    s = conn()
    s.sendall(req('/healthz'))
    buf = b''
    while not buf.endswith(b'ok\n'):
        buf += s.recv(4096)
    time.sleep(0.6)
    t, got = trickle_until_closed(s, b'GET /' + b'a' * 100, time.monotonic())
    s.close()
    assert t is not None and 0.8 <= t <= 2.0, 'second head closed after %s s' % t
    d.stop()

def test_keepalive_timeout(ctx):
    d = http_daemon(ctx, http={'keepalive_timeout': '500ms'})
    s = harness.connect(d.addr('tcp', svc='http'), timeout=5)
    s.sendall(req('/healthz'))
    buf = b''
    while not buf.endswith(b'ok\n'):
        buf += s.recv(4096)
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(4096) == b'', 'data on an idle keep-alive connection'
    took = time.monotonic() - t0
    assert 0.4 <= took <= 2.0, 'idle keep-alive closed after %.2f s, timeout 0.5 s' % took
    s.close()
    d.stop()


def test_keepalive_requests(ctx):
    d = http_daemon(ctx, http={'keepalive_requests': '3'})
    p = port_of(d)
    s = socket.create_connection((HOST, p), timeout=5)
    conns = []
    for i in range(3):
        s.sendall(req('/healthz'))
        buf = b''
        while not buf.endswith(b'ok\n'):
            b = s.recv(4096)
            assert b, 'EOF before response %d: %r' % (i + 1, buf)
            buf += b
        conns.append(b'\r\nconnection: close' in buf.lower())
    assert conns == [False, False, True], conns
    s.settimeout(5)
    assert s.recv(4096) == b'', 'no FIN after the 3rd response'
    s.close()
    # Pipelined: a 4th is not answered.
    r = get(p, req('/healthz') * 4, expect=3)
    assert [x.status for x in r.responses] == [200, 200, 200] and r.closed, r
    d.stop()


# -- slowloris ----------------------------------------------------------------------

TRICKLER = r'''
import resource, socket, sys, time
port, n, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 64, n + 64))
head = b'GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: ' + b's' * 200
socks = []
for i in range(n):
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    socks.append(s)
print('connected', flush=True)
dead = 0
for r in range(rounds):
    t = time.monotonic()
    for s in socks:
        try:
            s.send(head[r:r + 1])
        except OSError:
            dead += 1
    time.sleep(max(0, 0.1 - (time.monotonic() - t)))
print('done dead=%d' % dead, flush=True)
'''


def test_slowloris(ctx):
    d = http_daemon(ctx)
    p = port_of(d)
    n, rounds = 1000, 50
    proc = subprocess.Popen([sys.executable, '-c', TRICKLER, str(p), str(n), str(rounds)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = proc.stdout.readline()
        assert line == b'connected\n', line + proc.stdout.read(2000)
        time.sleep(0.3)
        lat = []
        for i in range(100):
            t = time.monotonic()
            s = socket.create_connection((HOST, p), timeout=5)
            s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            got = harness.recv_until_eof(s, deadline=t + 5)
            lat.append(time.monotonic() - t)
            s.close()
            assert got.startswith(b'HTTP/1.1 200') and got.endswith(b'ok\n'), got
            time.sleep(0.03)
        m, _ = scrape(p)
        active = sample(m, 'ringd_connections_active', service='http', transport='tcp')
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0 and b'dead=0' in out, out
    lat.sort()
    p50, p99, mx = lat[49], lat[98], lat[-1]
    print('  slowloris [%s]: %d trickling, probe p50 %.2f ms, p99 %.2f ms, max %.2f ms'
          % (ctx.backend, n, p50 * 1e3, p99 * 1e3, mx * 1e3))
    assert active >= n, 'only %s connections active during the slowloris' % active
    assert p99 < 0.050, 'probe p99 %.1f ms under slowloris' % (p99 * 1e3)
    assert get(p, req('/healthz')).status == 200
    d.stop()


# -- bad input fuzz-lite ------------------------------------------------------------

VALID = [
    b'GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: f/1\r\nAccept: */*\r\n\r\n',
    b'HEAD /readyz HTTP/1.1\r\nHost: example.com:80\r\nX-A: b\r\n\r\n',
    b'GET /metrics?x=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
    b'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
]
BAD_BYTES = [0, 1, 2, 7, 8, 11, 12, 13, 14, 27, 31, 127]


def fuzz_cases(seed=20240):
    rnd = random.Random(seed)
    out = []
    for i in range(300):
        kind = i % 6
        if kind == 0:               # random bytes with a NUL in them
            b = bytearray(rnd.randbytes(rnd.randint(1, 300)))
            b[rnd.randrange(len(b))] = 0
        elif kind == 1:             # a valid head with one control byte in it
            v = rnd.choice(VALID)
            b = bytearray(v)
            pos = rnd.randrange(len(v) - 4)
            c = rnd.choice(BAD_BYTES)
            while c == b[pos]:
                c = rnd.choice(BAD_BYTES)
            b[pos] = c
        elif kind == 2:             # a request line of random printable junk
            alphabet = bytes(range(0x21, 0x7f))
            words = [bytes(rnd.choice(alphabet) for _ in range(rnd.randint(1, 20)))
                     for _ in range(rnd.randint(1, 5))]
            b = bytearray(b' '.join(words) + b'\r\n\r\n')
            if rnd.random() < 0.5:
                b = bytearray(b'GET ' + bytes(b))          # GET junk... : no version
        elif kind == 3:             # bad framing in a valid-looking head
            te_cl = rnd.choice([
                b'Content-Length: -1', b'Content-Length: 1e3', b'Content-Length: 0x10',
                b'Content-Length: 5, 6', b'Content-Length: +5', b'Content-Length:',
                b'Content-Length: 99999999999999999999999',
                b'Transfer-Encoding: gzip', b'Transfer-Encoding: chunked, chunked',
                b'Transfer-Encoding: identity', b'Transfer-Encoding: chunked\r\n'
                b'Content-Length: 3', b'Host: y', b' X-Lead: fold', b'X-Sp : v',
                b'X-\x7f: v', b'X y: z', b': empty', b'X-A: \x00',
            ])
            b = bytearray(b'GET /healthz HTTP/1.1\r\nHost: x\r\n' + te_cl + b'\r\n\r\n'
                          + rnd.randbytes(rnd.randint(0, 20)))
        elif kind == 4:             # broken chunked bodies
            junk = rnd.choice([b'zz\r\n', b'-1\r\n', b'5\r\nhelloXX', b'5 5\r\nhello\r\n',
                               b'ffffffffffffffffff\r\n', b'\r\n', b'0x5\r\nhello\r\n',
                               b'5;\x01\r\nhello\r\n', b'1\r\nab\r\n'])
            b = bytearray(b'GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked'
                          b'\r\n\r\n' + junk + rnd.randbytes(rnd.randint(0, 8)))
        else:                       # bad versions and oversize lines
            b = bytearray(rnd.choice([
                b'GET / HTTP/1.1x\r\nHost: x\r\n\r\n', b'GET / HTTP/11\r\nHost: x\r\n\r\n',
                b'GET / http/1.1\r\nHost: x\r\n\r\n', b'GET  / HTTP/1.1\r\nHost: x\r\n\r\n',
                b'GET / HTTP/1.1 \r\nHost: x\r\n\r\n', b'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n',
                b'GET HTTP/1.1\r\nHost: x\r\n\r\n', b'GET / HTTP/0.9\r\n\r\n',
                b'GET / HTTP/2\r\n\r\n', b'GET noslash HTTP/1.1\r\nHost: x\r\n\r\n',
                b'\r\n\r\n\r\n\r\n', b'GET /' + b'x' * rnd.randint(9000, 20000),
                b'X' * rnd.randint(9000, 40000) + b'\r\n\r\n',
                b'GET / HTTP/1.1\r\nHost: x\r\nX: ' + b'v' * rnd.randint(9000, 12000),
            ]))
        out.append(bytes(b))
    return out


def fuzz_one(port, data, timeout=2.0):
    """(verdict, detail): 'ok', or why not."""
    t0 = time.monotonic()
    s = socket.create_connection((HOST, port), timeout=timeout)
    buf = b''
    reset = False
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        while True:
            left = t0 + timeout - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                reset = True
                break
            if not b:
                # EOF: parse what came
                rs, rest = hc._parse_responses(buf, [False] * 8, True)
                if not buf:
                    return 'close', None
                if not rs:
                    return 'bad', 'incomplete response before close: %r' % buf[:200]
                for x in rs:
                    if x.status < 400:
                        return 'bad', 'status %d' % x.status
                if rest:
                    return 'bad', 'junk after the response: %r' % rest[:100]
                return 'ok', rs[0].status
            buf += b
        rs, rest = hc._parse_responses(buf, [False] * 8, False)
        if rs and all(x.status >= 400 for x in rs) and not rest:
            return 'open', rs[0].status      # answered, not closed within 2 s
        if reset:
            return 'reset', buf[:200]
        return 'hang', buf[:200]
    finally:
        s.close()


def test_fuzz_lite(ctx):
    d = http_daemon(ctx)
    p = port_of(d)
    cases = fuzz_cases()
    results = [None] * len(cases)

    def worker(k):
        for i in range(k, len(cases), 6):
            try:
                results[i] = fuzz_one(p, cases[i])
            except Exception as e:          # refused, etc.: reported below
                results[i] = ('error', repr(e))
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = {}
    bad = []
    for i, (verdict, detail) in enumerate(results):
        if verdict == 'ok':
            statuses[detail] = statuses.get(detail, 0) + 1
        elif verdict == 'close':
            statuses['close'] = statuses.get('close', 0) + 1
        else:
            bad.append('case %d %s: %r -> %s' % (i, verdict, cases[i][:120], detail))
    print('  fuzz-lite: %r' % sorted(statuses.items(), key=str))
    assert d.alive(), d.stderr()
    assert get(p, req('/healthz')).status == 200
    assert not bad, '%d of %d:\n%s' % (len(bad), len(cases), '\n'.join(bad[:40]))
    d.stop()


# -- responses, endpoints, request logs, admission ---------------------------------

IMF_FIXDATE = r'(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT'


def test_response_fields_and_endpoints(ctx):
    import email.utils
    import re
    d = http_daemon(ctx, http={'healthz': '/live', 'readyz': '/ready/x', 'metrics': '',
                               'server': ''},
                    extra={'http2': {'plugin': 'http', 'listen': 'tcp://127.0.0.1:0',
                                     'server': 'probe-responder/2'}})
    p, p2 = port_of(d), port_of(d, 'http2')
    for path, status in (('/live', 200), ('/ready/x', 200), ('/healthz', 404),
                         ('/readyz', 404), ('/metrics', 404), ('/nope', 404)):
        r = get(p, req(path))
        assert r.status == status, (path, r)
        assert 'server' not in r.headers, 'server = (empty) still sent %r' % r.fields
        date = one_header(r, 'Date')
        assert re.fullmatch(IMF_FIXDATE, date), date
        assert abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) < 2
        one_header(r, 'Content-Type')
        assert int(one_header(r, 'Content-Length')) == len(r.body)
    r = get(p, req('/live'))
    assert one_header(r, 'Cache-Control') == 'no-store' and r.body == b'ok\n'
    r = get(p2, req('/healthz'))
    assert r.status == 200 and one_header(r, 'Server') == 'probe-responder/2', r.fields
    st, hd, body = hc.http_get(p2, '/metrics')
    assert st == 200 and b'ringd_http_requests_total{service="http",route="/live"}' in body
    d.stop()


def wait_log(d, pattern, timeout=3.0):
    import re
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(pattern, d.stderr(), re.M)
        if found:
            return found
        time.sleep(0.05)
    return []


def test_request_logs(ctx):
    import re
    d = http_daemon(ctx, ringd={'workers': '1'}, http={'header_timeout': '500ms'},
                    extra={'all': {'plugin': 'http', 'listen': 'tcp://127.0.0.1:0',
                                   'log_requests': 'all'},
                           'quiet': {'plugin': 'http', 'listen': 'tcp://127.0.0.1:0',
                                     'log_requests': 'no'}})
    p = port_of(d)
    s = socket.create_connection((HOST, p), timeout=5)
    local = '%s:%d' % s.getsockname()
    s.sendall(req('/nope?secret=1', extra=b'Connection: close\r\n'))
    harness.recv_until_eof(s, deadline=time.monotonic() + 5)
    s.close()
    get(p, req('/healthz'))
    line = wait_log(d, r'^.*http: request method=GET path=.*$')
    assert len(line) == 1, 'want one line (errors only), got %r' % line
    l = line[0]
    for want in ('status=404', 'path="/nope"', 'peer=' + local, 'svc=http'):
        assert want in l, 'no %s in %r' % (want, l)
    assert 'secret' not in l, l
    assert re.search(r' bytes=\d+ ', l) and re.search(r' duration_us=\d+', l), l
    # Bytes outside visible ASCII in a path the parser takes: written \xHH.
    r = get(p, req('/caf\u00e9'))
    if r.status == 404:
        assert wait_log(d, r'path="/caf\\x[cC]3\\x[aA]9"'), d.stderr()
    get(port_of(d, 'all'), req('/healthz'))
    assert wait_log(d, r'^.*http: request method=GET path="/healthz" status=200 .*svc=all')
    get(port_of(d, 'quiet'), req('/nope'))
    # A head that never ends: logged as incomplete when header_timeout cuts it.
    s = socket.create_connection((HOST, p), timeout=5)
    s.sendall(b'GET /slow HTTP/1.1\r\nHost: x\r\n')
    try:
        harness.recv_until_eof(s, deadline=time.monotonic() + 3)
    except ConnectionResetError:
        pass
    s.close()
    assert wait_log(d, r'^.*http: request incomplete .*reason=deadline'), d.stderr()
    # A flood of errors: at most 10 lines a second, then the suppressed count.
    before = len(re.findall(r'http: request method=', d.stderr()))
    for i in range(60):
        get(p, req('/flood%d' % i), close_wait=0)
    time.sleep(1.2)
    get(p, req('/after'))
    sup = wait_log(d, r'http: request lines suppressed count=(\d+)')
    lines = re.findall(r'http: request method=\S+ path="/flood', d.stderr())
    assert len(lines) <= 10, '%d flood lines logged in about a second' % len(lines)
    assert sup and sum(map(int, sup)) >= 60 - 10 - 1, (sup, len(lines))
    assert 'svc=quiet' not in d.stderr(), 'log_requests = no logged'
    d.stop()


def test_per_source_limit_applies(ctx):
    d = http_daemon(ctx, http={'max_connections_per_source': '2'})
    p = port_of(d)
    a = socket.create_connection((HOST, p), timeout=5)
    b = socket.create_connection((HOST, p), timeout=5)
    for s in (a, b):
        s.sendall(req('/healthz'))
        buf = b''
        while not buf.endswith(b'ok\n'):
            buf += s.recv(4096)
    try:
        c = socket.create_connection((HOST, p), timeout=5)
        try:
            c.sendall(req('/healthz'))
            got = c.recv(4096)
        finally:
            c.close()
    except ConnectionResetError:
        got = b''
    assert got == b'', 'a third connection from one source was served: %r' % got[:80]
    a.close()
    time.sleep(0.2)
    assert get(p, req('/healthz')).status == 200
    b.close()
    d.stop()


def test_defer_accept(ctx):
    """Services whose clients speak first (http, echo) leave a silent
    connection in the kernel (TCP_DEFER_ACCEPT) until its first bytes
    arrive, or for about a second; defer_accept = no and a service that
    greets (daytime) take it at once."""
    d = http_daemon(ctx, extra={
        'echo': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0'},
        'echo_now': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0',
                     'defer_accept': 'no'},
        'daytime': {'plugin': 'time', 'format': 'daytime',
                    'listen': 'tcp://127.0.0.1:0'}})
    port = port_of(d)

    def accepted(svc, name='ringd_connections_accepted_total'):
        m, _ = scrape(port)
        return sample(m, name, service=svc, transport='tcp') or 0

    def active_http():
        # The scrape's own connection is one of them.
        return accepted('http', 'ringd_connections_active') - 1

    def wait_accepted(svc, want, within, count=accepted):
        end = time.monotonic() + within
        while count(svc) < want:
            assert time.monotonic() < end, '%s: not accepted in %.1f s' % (svc, within)
            time.sleep(0.05)
        return time.monotonic()

    # A greeting needs no request: daytime answers a silent client.
    s = socket.create_connection((HOST, port_of(d, 'daytime')), timeout=5)
    line = harness.recv_until_eof(s, deadline=time.monotonic() + 5)
    s.close()
    assert line.endswith(b'\r\n') and len(line) > 10, line

    now = socket.create_connection((HOST, port_of(d, 'echo_now')), timeout=5)
    wait_accepted('echo_now', 1, 0.9)
    # Silent clients of the deferred services are not ringd's yet.
    t0 = time.monotonic()
    silent = socket.create_connection((HOST, port_of(d, 'echo')), timeout=5)
    quiet = socket.create_connection((HOST, port), timeout=5)
    talker = socket.create_connection((HOST, port_of(d, 'echo')), timeout=5)
    time.sleep(0.4)
    assert accepted('echo') == 0
    assert active_http() == 0
    # One that speaks is taken when it does, and served.
    talker.sendall(b'ping\n')
    assert harness.recv_exact(talker, 5) == b'ping\n'
    assert accepted('echo') == 1
    # The kernel hands the silent ones over after its second; the http
    # one then runs into header_timeout like any other.
    t1 = wait_accepted('echo', 2, 5.0)
    assert t1 - t0 >= 0.8, 'a silent echo client was accepted after %.2f s' % (t1 - t0)
    wait_accepted('http', 1, 5.0, count=lambda _: active_http())
    silent.sendall(b'late\n')
    assert harness.recv_exact(silent, 5) == b'late\n'
    for c in (now, silent, quiet, talker):
        c.close()


if __name__ == '__main__':
    harness.main([
        test_curl,
        test_wget,
        test_http_client_keepalive,
        test_ab_keepalive,
        test_wrk,
        test_h2load_pipelined,
        test_check_http,
        test_htpdate,
        test_haproxy_httpchk_and_drain,
        test_blackbox_http_2xx,
        test_promtool_check_metrics,
        test_prometheus_scrape_up,
        test_kubelet_probe,
        test_method_status_codes,
        test_framing_errors_close_cleanly,
        test_pipelined_in_order,
        test_expect_100_continue,
        test_chunked_body_discarded,
        test_request_split_into_single_bytes,
        test_routes,
        test_route_config_errors,
        test_metrics_after_traffic,
        test_drain,
        test_drain_body_in_progress,
        test_header_timeout_is_a_deadline,
        test_keepalive_timeout,
        test_keepalive_requests,
        test_slowloris,
        test_fuzz_lite,
        test_response_fields_and_endpoints,
        test_request_logs,
        test_per_source_limit_applies,
        test_defer_accept,
    ])
