#!/usr/bin/env python3
"""Run every wrapper of http_clients.py once against a stand-in server and
print what each returned. Not part of meson test: it checks the client
layer itself, before ringd's http plugin exists.

The stand-in is Debian's nginx-light in the foreground (one process,
master_process off), its prefix, pid, logs and temp paths in a temporary
directory, listening on a free loopback port: /healthz and /readyz answer
200, /readyz answers 503 while the file `draining` exists in that directory
(so HAProxy can be seen marking it DOWN), /metrics answers a small valid
Prometheus text body, /missing 404, everything else 200.

    python3 tests/integration/check_http_clients.py [-k NAME]

Exit 0 when every check held, 1 otherwise (each failure is printed).
"""

import argparse
import email.utils
import os
import socket
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import http_clients as hc  # noqa: E402
from harness import Skip  # noqa: E402

METRICS = ('# HELP standin_requests_total Requests served by the stand-in.\\n'
           '# TYPE standin_requests_total counter\\n'
           'standin_requests_total{code=\\"200\\"} 7\\n'
           '# HELP standin_up Whether the stand-in is up.\\n'
           '# TYPE standin_up gauge\\n'
           'standin_up 1\\n')


class Nginx(hc.Server):
    name = 'nginx'

    def configure(self):
        self.port = hc.free_port()
        self.flag = os.path.join(self.dir, 'draining')
        self.cfg = os.path.join(self.dir, 'nginx.conf')
        d = self.dir
        with open(self.cfg, 'w') as f:
            f.write('''
master_process off;
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log;
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    server {
        listen 127.0.0.1:%(port)d;
        location = /healthz { default_type text/plain; return 200 "ok\\n"; }
        location = /readyz {
            default_type text/plain;
            if (-f %(flag)s) { return 503 "draining\\n"; }
            return 200 "ready\\n";
        }
        location = /metrics {
            default_type "text/plain; version=0.0.4";
            return 200 "%(metrics)s";
        }
        location = /missing { return 404; }
        location / { default_type text/plain; return 200 "root\\n"; }
    }
}
''' % {'d': d, 'port': self.port, 'flag': self.flag, 'metrics': METRICS})

    def argv(self):
        return [hc.need('nginx'), '-p', self.dir, '-e', os.path.join(self.dir, 'error.log'),
                '-c', self.cfg, '-g', 'daemon off;']

    def ready(self):
        return hc.http_get(self.port, '/healthz', timeout=1.0)[0] == 200

    def log(self):
        text = super().log()
        try:
            with open(os.path.join(self.dir, 'error.log')) as f:
                text += f.read()
        except FileNotFoundError:
            pass
        return text

    def drain(self, on=True):
        if on:
            open(self.flag, 'w').close()
        elif os.path.exists(self.flag):
            os.unlink(self.flag)


class SkewedDate:
    """A loopback server whose Date header is `skew` seconds ahead, with
    keep-alive, for htpdate to measure a non-zero offset."""

    def __init__(self, skew):
        self.skew = skew
        self.ls = socket.socket()
        self.ls.bind(('127.0.0.1', 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.ls.close()
        self.thread.join(5)

    def serve(self):
        self.ls.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.ls.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()

    def conn(self, c):
        c.settimeout(5)
        buf = b''
        try:
            while True:
                b = c.recv(4096)
                if not b:
                    break
                buf += b
                while b'\r\n\r\n' in buf:
                    head, _, buf = buf.partition(b'\r\n\r\n')
                    date = email.utils.formatdate(time.time() + self.skew, usegmt=True)
                    body = b'' if head.startswith(b'HEAD') else b'ok\n'
                    c.sendall(b'HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Length: 3\r\n\r\n%s'
                              % (date.encode(), body))
        except OSError:
            pass
        finally:
            c.close()


# -- the checks: each runs one wrapper, prints its result, asserts on it ------

def check_curl(ngx):
    r = hc.curl_get(ngx.port, '/healthz')
    print('   curl GET      ', r)
    assert r.exit == 0 and r.code == 200 and r.body == b'ok\n', r.raw
    assert r.headers['content-type'] == ['text/plain'], r.headers
    r = hc.curl_head(ngx.port, '/healthz')
    print('   curl -I       ', r)
    assert r.exit == 0 and r.code == 200 and r.method == 'HEAD' and r.body == b''
    assert r.headers['content-length'] == ['3'], r.headers
    r = hc.curl_http10(ngx.port, '/readyz')
    print('   curl --http1.0', r)
    assert r.exit == 0 and r.code == 200 and r.headers['connection'] == ['close']
    r = hc.curl_reuse(ngx.port, ('/healthz', '/readyz'))
    print('   curl reuse    ', r)
    assert r.exit == 0 and r.codes == [200, 200] and r.connects == [1, 0] and r.reused, r
    r = hc.curl_get(ngx.port, '/missing')
    print('   curl 404      ', r)
    assert r.exit == 0 and r.code == 404


def check_wget(ngx):
    r = hc.wget(ngx.port, '/healthz')
    print('  ', r)
    assert r.exit == 0 and r.status == 200 and r.body == b'ok\n', r.raw
    r = hc.wget(ngx.port, '/missing')
    print('   404:', r)
    assert r.exit == 8 and r.status == 404, r.raw


def check_ab(ngx):
    r = hc.ab(ngx.port, '/healthz', n=2000, c=10)
    print('  ', r)
    assert r.exit == 0 and r.complete == 2000 and r.failed == 0 and r.non_2xx == 0, r.raw
    assert r.keepalive_requests == 2000, r.raw
    r = hc.ab(ngx.port, '/missing', n=100, c=2)
    print('   404:', r)
    assert r.non_2xx == 100, r.raw


def check_wrk(ngx):
    r = hc.wrk(ngx.port, '/healthz')
    print('  ', r)
    assert r.exit == 0 and r.requests > 1000 and r.non_2xx_3xx == 0, r.raw
    assert sum(r.socket_errors.values()) == 0 and 99 in r.latency, r.raw
    r = hc.wrk(ngx.port, '/missing', duration='1s')
    print('   404:', r)
    assert r.non_2xx_3xx == r.requests > 0, r.raw


def check_h2load(ngx):
    r = hc.h2load(ngx.port, '/healthz', n=2000, c=10, m=8)
    print('  ', r)
    assert r.exit == 0 and r.protocol == 'http/1.1', r.raw
    assert r.succeeded == 2000 and r.failed == 0 and r.status['2xx'] == 2000, r.raw
    r = hc.h2load(ngx.port, '/missing', n=80, c=2, m=8)
    print('   404:', r)
    assert r.status['4xx'] == 80, r.raw


def check_check_http(ngx):
    r = hc.check_http(ngx.port, '/healthz')
    print('  ', r)
    assert r.exit == 0 and r.state == 'OK' and r.status == 200, r.raw
    r = hc.check_http(ngx.port, '/missing')
    print('   404:', r)
    assert r.exit == 1 and r.state == 'WARNING' and r.status == 404, r.raw


def check_htpdate(ngx):
    r = hc.htpdate(ngx.port, '/healthz')
    print('  ', r)
    assert r.exit == 0 and r.offset is not None and abs(r.offset) < 1.5, r.raw
    assert len(r.polls) >= 4, r.raw
    with SkewedDate(100) as sk:
        r = hc.htpdate(sk.port, '/')
    print('   +100 s:', r)
    assert r.exit == 0 and 98.5 < r.offset < 101.5, r.raw


def check_haproxy(ngx):
    with hc.HAProxy(ngx.port) as hap:
        t0 = time.monotonic()
        up = hap.wait_state('UP', 'readyz')
        up_default = hap.wait_state('UP', 'default')
        print('   readyz  UP after %.2f s:' % (time.monotonic() - t0), up)
        print('   default UP:', up_default)
        assert up.check_code == 200 and up_default.check_code == 200
        st, _, body = hc.http_get(hap.port, '/healthz')
        print('   through the frontend: %d %r' % (st, body))
        assert st == 200 and body == b'ok\n'
        ngx.drain(True)
        t0 = time.monotonic()
        try:
            down = hap.wait_state('DOWN', 'readyz')
            print('   readyz  DOWN after %.2f s:' % (time.monotonic() - t0), down)
            assert down.check_code == 503, down
            still = hap.server('default')
            print('   default while draining:', still)
            assert still.state == 'UP'
        finally:
            ngx.drain(False)
        up = hap.wait_state('UP', 'readyz')
        print('   readyz  UP again:', up)


def check_blackbox(ngx):
    with hc.Blackbox() as bb:
        r = bb.probe(hc.url(ngx.port, '/healthz'))
        print('  ', r)
        assert r.success == 1 and r.status_code == 200, r.raw
        r = bb.probe(hc.url(ngx.port, '/missing'))
        print('   404:', r)
        assert r.success == 0 and r.status_code == 404, r.raw


def check_promtool(ngx):
    r = hc.promtool_check_url(ngx.port, '/metrics')
    print('  ', r)
    assert r.exit == 0 and r.ok and r.status == 200, r.raw
    r = hc.promtool_check_metrics(b'# TYPE x counter\nx 1\n')
    print('   bad body:', r)
    assert r.exit == 3 and any('_total' in p for p in r.problems), r.raw
    r = hc.promtool_check_metrics(b'x{ 1\n')
    print('   unparsable:', r)
    assert r.exit == 1, r.raw


def check_prometheus(ngx):
    r = hc.prometheus_up(ngx.port, '/metrics')
    print('  ', r)
    assert r.value == 1.0 and r.health == 'up', r.raw
    # A target that is not there: up is 0 and lastError says why.
    r = hc.prometheus_up(hc.free_port(), '/metrics')
    print('   nothing listening:', r)
    assert r.value == 0.0 and r.health == 'down' and r.last_error, r.raw


def check_http_client(ngx):
    r = hc.http_client_keepalive(ngx.port)
    print('  ', r)
    assert r.statuses == [200, 200, 200, 200] and r.reused, r


def check_raw(ngx):
    r = hc.kubelet_probe(ngx.port, '/healthz')
    print('   kubelet:', r)
    assert r.status == 200 and r.body == b'ok\n' and r.closed, r
    assert r.headers['connection'] == ['close'], r.headers
    req = (b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
           b'HEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n'
           b'GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    r = hc.raw_request(ngx.port, req)
    print('   pipelined:', [(x.status, x.body[:12]) for x in r.responses], 'closed=%s' % r.closed)
    assert [x.status for x in r.responses] == [200, 200, 404] and r.closed, r
    assert r.responses[1].body == b'' and r.leftover == b'', r
    r = hc.raw_request(ngx.port, b'HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n', close_wait=0.3)
    print('   HEAD keep-alive:', r)
    assert r.status == 200 and r.body == b'' and not r.closed
    r = hc.raw_request(ngx.port, b'GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n')
    print('   NUL in the target:', r)
    assert r.status == 400 and r.closed, r
    r = hc.raw_request(ngx.port, b'GET /healthz HTTP/1.1\r\nHost: x\r\n', timeout=0.5)
    print('   head never ends:', r)
    assert r.timed_out and r.status is None and not r.closed, r


CHECKS = [check_curl, check_wget, check_ab, check_wrk, check_h2load, check_check_http,
          check_htpdate, check_haproxy, check_blackbox, check_promtool, check_prometheus,
          check_http_client, check_raw]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('-k', dest='only', action='append', default=[])
    opts = ap.parse_args()
    failed = 0
    with Nginx() as ngx:
        print('stand-in: %s on 127.0.0.1:%d (pid %d)'
              % (subprocess.run([ngx.argv()[0], '-v'], capture_output=True, text=True)
                 .stderr.strip(), ngx.port, ngx.proc.pid), flush=True)
        for check in CHECKS:
            name = check.__name__[len('check_'):]
            if opts.only and not any(o in name for o in opts.only):
                continue
            print('== %s' % name, flush=True)
            t0 = time.monotonic()
            try:
                check(ngx)
            except Skip as e:
                print('SKIP %s: %s' % (name, e))
            except Exception:
                failed += 1
                print('FAIL %s' % name)
                traceback.print_exc(file=sys.stdout)
            else:
                print('ok   %s (%.2f s)' % (name, time.monotonic() - t0))
            sys.stdout.flush()
        if not ngx.alive():
            print('FAIL: nginx died; log:\n' + ngx.log())
            failed += 1
    print('%d failed' % failed)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
