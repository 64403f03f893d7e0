#!/usr/bin/env python3
"""ringd-probe against servers: ringd on this variant's engine, and servers
nobody here wrote (nginx-light, xinetd's internal services, socat), plus
small scripted listeners that refuse, reset, stall, cut short, answer
garbage or flood. Exit codes and output lines are asserted.

The probe runs on the variant's engine too: --backend io_uring or epoll,
and for auto-no-uring `--backend auto` under the same seccomp wrapper as
the daemon, where it must fall back to epoll and still check."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness

PROBE = os.environ.get('RINGD_PROBE', '')
HERE = os.path.dirname(os.path.abspath(__file__))
QUOTES = os.path.normpath(os.path.join(HERE, '..', '..', 'conf', 'quotes'))
MS = r'[0-9]+\.[0-9]{2} ms'
PERF = r' \| time=[0-9]+\.[0-9]{6}s'


# -- running the probe ------------------------------------------------------

def probe(ctx, *args, timeout=30, preexec=None):
    """Runs ringd-probe on this variant's engine; returns (exit, lines,
    its peak RSS in KiB). wait4() gives this one child's rusage;
    preexec runs in the child before the exec."""
    backend = 'auto' if ctx.backend == 'auto-no-uring' else ctx.backend
    cmd = [PROBE, '--backend', backend] + list(args)
    if ctx.backend == 'auto-no-uring':
        cmd = ctx.no_uring_prefix(True) + cmd
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             preexec_fn=preexec)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            timer.cancel()
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    assert errors == '', 'ringd-probe wrote to stderr: %r' % errors
    return p.returncode, text.splitlines(), ru.ru_maxrss


def expect(ctx, code, patterns, *args, timeout=30):
    """Runs the probe; asserts the exit status and that line i matches
    patterns[i] in full."""
    rc, lines, rss = probe(ctx, *args, timeout=timeout)
    assert len(lines) == len(patterns), (args, rc, lines)
    for line, pat in zip(lines, patterns):
        assert re.fullmatch(pat, line), 'line %r does not match %r (args %r)' % (
            line, pat, args)
        m = re.search(r' in ([0-9.]+) ms \| time=([0-9.]+)s', line)
        if m:
            # The message's time and the perfdata's are one reading.
            assert abs(float(m.group(1)) - float(m.group(2)) * 1000) < 0.008, line
    assert rc == code, 'exit %d, want %d: %r' % (rc, code, lines)
    return lines, rss


def url(scheme, addr, path=''):
    host = '[%s]' % addr.host if ':' in addr.host else addr.host
    return '%s://%s:%d%s' % (scheme, host, addr.port, path)


def esc(u):
    return re.escape(u)


def free_port(family=socket.AF_INET, type_=socket.SOCK_STREAM):
    with socket.socket(family, type_) as s:
        s.bind(('::1' if family == socket.AF_INET6 else '127.0.0.1', 0))
        return s.getsockname()[1]


# -- ringd ------------------------------------------------------------------

def ringd_services(unix_path=None):
    both = 'tcp://127.0.0.1:0, udp://127.0.0.1:0'
    http = 'tcp://127.0.0.1:0, tcp://[::1]:0'
    if unix_path:
        http += ', unix:' + unix_path
    return {
        'echo': {'listen': both + ', tcp://[::1]:0'},
        'daytime': {'plugin': 'time', 'format': 'daytime', 'listen': both},
        'time': {'format': 'time', 'listen': both},
        'qotd': {'quotes': QUOTES, 'listen': both},
        'discard': {'listen': 'tcp://127.0.0.1:0'},
        'chargen': {'listen': 'tcp://127.0.0.1:0'},
        'http': {'listen': http,
                 'route': '/down 503 body="draining\\n"'},
    }


def test_ringd_every_service_tcp_and_udp(ctx):
    d = ctx.daemon(ringd_services())
    targets = [
        (url('echo', d.addr('tcp', 'echo')), '256 bytes echoed in ' + MS),
        (url('echo+udp', d.addr('udp', 'echo')), '256 bytes echoed in ' + MS),
        (url('echo', d.addr('tcp', 'echo', socket.AF_INET6)),
         '256 bytes echoed in ' + MS),
        (url('daytime', d.addr('tcp', 'daytime')),
         r"'[A-Z][a-z]+day, [A-Z][a-z]+ \d+, \d{4} \d\d:\d\d:\d\d-UTC' in " + MS),
        (url('daytime+udp', d.addr('udp', 'daytime')), r"'.*' in " + MS),
        (url('time', d.addr('tcp', 'time')), r'offset [-+][01]\.\d s in ' + MS),
        (url('time+udp', d.addr('udp', 'time')), r'offset [-+][01]\.\d s in ' + MS),
        (url('qotd', d.addr('tcp', 'qotd')), r'\d+-byte quote in ' + MS),
        (url('qotd+udp', d.addr('udp', 'qotd')), r'\d+-byte quote in ' + MS),
        (url('discard', d.addr('tcp', 'discard')), '256 bytes discarded in ' + MS),
        (url('chargen', d.addr('tcp', 'chargen')),
         '256 bytes of RFC 864 pattern in ' + MS),
        (url('http', d.addr('tcp', 'http'), '/healthz'), '200 in ' + MS),
        (url('http', d.addr('tcp', 'http', socket.AF_INET6), '/healthz'),
         '200 in ' + MS),
    ]
    # All in one call, checked concurrently; lines come in argument order.
    expect(ctx, 0, ['OK - %s %s%s' % (esc(u), m, PERF) for u, m in targets],
           *[u for u, _ in targets])
    # Payloads larger than any one buffer, on both stream directions.
    expect(ctx, 0, ['OK - %s 1048576 bytes echoed in %s%s' % (
        esc(targets[0][0]), MS, PERF)], '--size', '1m', targets[0][0])
    expect(ctx, 0, ['OK - %s 200000 bytes of RFC 864 pattern in %s%s' % (
        esc(targets[10][0]), MS, PERF)], '--size', '200000', targets[10][0])
    expect(ctx, 0, ['OK - %s 60000 bytes echoed in %s%s' % (
        esc(targets[1][0]), MS, PERF)], '--size', '60000', targets[1][0])
    d.stop()


def test_ringd_http_verdicts(ctx):
    d = ctx.daemon(ringd_services())
    a = d.addr('tcp', 'http')
    up, down = url('http', a, '/healthz'), url('http', a, '/down')
    missing = url('http', a, '/nothing/here')
    expect(ctx, 2, ['CRITICAL - %s 503, expected 200-399, in %s%s' % (esc(down), MS, PERF)],
           down)
    expect(ctx, 0, ['OK - %s 503 in %s%s' % (esc(down), MS, PERF)],
           '--expect-status', '503', '--expect-body', '^draining$', down)
    expect(ctx, 2, ['CRITICAL - %s 404, expected 200-399, in %s%s' % (esc(missing), MS, PERF)],
           missing)
    expect(ctx, 2, ['CRITICAL - %s 200, body does not match --expect-body, in %s%s'
                    % (esc(up), MS, PERF)], '--expect-body', 'no such text', up)
    expect(ctx, 0, ['OK - %s 200 in %s%s' % (esc(up), MS, PERF)],
           '--expect-header', 'content-type: ^text/', up)
    expect(ctx, 2, [r'CRITICAL - %s 200, header Content-Type: .* does not match%s'
                    % (esc(up), PERF)], '--expect-header', 'Content-Type: ^image/', up)
    expect(ctx, 2, [r'CRITICAL - %s 200 without a X-Nope header%s' % (esc(up), PERF)],
           '--expect-header', 'X-Nope: .', up)
    expect(ctx, 0, ['OK - %s 200 in %s%s' % (esc(up), MS, PERF)], '--method', 'HEAD', up)
    # localhost is ::1 and 127.0.0.1; only the IPv4 listener has this
    # port, so whichever address comes first, the check gets through.
    if socket.has_ipv6:
        lh = 'http://localhost:%d/healthz' % a.port
        expect(ctx, 0, ['OK - %s 200 in %s%s' % (esc(lh), MS, PERF)], lh)
    # The most severe verdict sets the exit: CRITICAL, WARNING, UNKNOWN.
    expect(ctx, 2, ['OK - .*', 'CRITICAL - .*', 'UNKNOWN - nope://x bad URL: unknown scheme'],
           up, down, 'nope://x')
    expect(ctx, 3, ['OK - .*', 'UNKNOWN - nope://x bad URL: unknown scheme'], up, 'nope://x')
    expect(ctx, 1, [r'WARNING - %s 200 in %s \| time=[0-9.]+s;0\.000000;' % (esc(up), MS),
                    'UNKNOWN - .*'], '--warn', '0.000001ms', up, 'nope://x')
    expect(ctx, 2, [r'CRITICAL - %s 200 in %s \| time=[0-9.]+s;;0\.000000' % (esc(up), MS)],
           '--crit', '0.000001ms', up)
    expect(ctx, 2, [r'WARNING - %s 200 in .*' % esc(up), r'CRITICAL - %s 503, .*' % esc(down)],
           '--warn', '0.000001ms', up, down)
    d.stop()


def test_ringd_unix_socket(ctx):
    path = os.path.join(ctx.tempdir(), 'http.sock')
    d = ctx.daemon(ringd_services(path))
    expect(ctx, 0, [r'OK - http://localhost/healthz 200 in %s%s' % (MS, PERF)],
           '--unix', path, 'http://localhost/healthz')
    expect(ctx, 2, [r'CRITICAL - http://localhost/down 503, expected 200-399, in %s%s'
                    % (MS, PERF)], '--unix', path, 'http://localhost/down')
    expect(ctx, 3, [r'UNKNOWN - echo\+udp://localhost --unix reaches stream services only'],
           '--unix', path, 'echo+udp://localhost')
    expect(ctx, 2, [r'CRITICAL - http://localhost/ No such file or directory%s' % PERF],
           '--unix', path + '.missing', 'http://localhost/')
    d.stop()


def test_ringd_json_prometheus_count(ctx):
    d = ctx.daemon(ringd_services())
    up = url('http', d.addr('tcp', 'http'), '/healthz')
    down = url('http', d.addr('tcp', 'http'), '/down')
    echo = url('echo', d.addr('tcp', 'echo'))
    rc, lines, _ = probe(ctx, '--json', up, down, 'x://')
    assert rc == 2, (rc, lines)
    assert len(lines) == 1, lines
    doc = json.loads(lines[0])
    assert doc['status'] == 'CRITICAL' and doc['exit'] == 2, doc
    t = doc['targets']
    assert [x['url'] for x in t] == [up, down, 'x://'], t
    assert [x['status'] for x in t] == ['OK', 'CRITICAL', 'UNKNOWN'], t
    assert t[0]['http_status'] == 200 and t[0]['success'] is True, t
    assert t[1]['http_status'] == 503 and t[1]['success'] is False, t
    assert 0 < t[0]['duration_seconds'] < 2, t
    assert t[2]['message'] == 'bad URL: unknown scheme', t

    rc, lines, _ = probe(ctx, '--prometheus', up, echo, down)
    assert rc == 2, (rc, lines)
    text = '\n'.join(lines)
    for metric in ('probe_success', 'probe_duration_seconds', 'probe_http_status_code'):
        assert '# TYPE %s gauge' % metric in lines, lines
    assert 'probe_success{target="%s"} 1' % up in lines, lines
    assert 'probe_success{target="%s"} 1' % echo in lines, lines
    assert 'probe_success{target="%s"} 0' % down in lines, lines
    assert 'probe_http_status_code{target="%s"} 200' % up in lines, lines
    assert 'probe_http_status_code{target="%s"} 503' % down in lines, lines
    assert 'probe_http_status_code{target="%s"}' % echo not in text, lines
    assert re.search(r'^probe_duration_seconds\{target="%s"\} 0\.\d{9}$' % re.escape(echo),
                     text, re.M), lines

    t0 = time.monotonic()
    lines, _ = expect(ctx, 0, ['OK - %s 256 bytes echoed in %s%s' % (esc(echo), MS, PERF)] * 4
                      + ['--- %s statistics ---' % esc(echo),
                         r'4 tries, 4 ok, 0% loss, min/avg/max/p50/p99 = '
                         r'[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+ ms'],
                      '--count', '4', '--interval', '100ms', echo)
    assert time.monotonic() - t0 >= 0.3, 'tries did not keep the interval'
    rc, lines, _ = probe(ctx, '--json', '--count', '3', '--interval', '10ms', echo)
    doc = json.loads(lines[0])
    assert rc == 0 and doc['targets'][0]['tries'] == 3 and doc['targets'][0]['ok'] == 3, doc
    assert doc['targets'][0]['loss'] == 0, doc
    d.stop()
    # A dead target: every try lost.
    expect(ctx, 2, ['CRITICAL - %s connection refused%s' % (esc(echo), PERF)] * 2
           + ['--- %s statistics ---' % esc(echo), '2 tries, 0 ok, 100% loss'],
           '--count', '2', '--interval', '10ms', echo)


# -- --config: the self-check of a ringd.ini ---------------------------------

def config_services(unix_path):
    """Every plugin on fixed free ports (the probe reads them from the
    file, so port 0 will not do): tcp and udp, 127.0.0.1 and ::1, a unix
    socket, and wildcards (*, 0.0.0.0, [::]) on unprivileged ports."""
    held = []

    def pick(type_):
        # Bound on [::] for both families and held until every port is
        # chosen: no two picks share a port, and a wildcard listener
        # finds its port free on IPv4 and IPv6 alike.
        s = socket.socket(socket.AF_INET6, type_)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind(('::', 0))
        held.append(s)
        return s.getsockname()[1]

    tcp = tcp6 = lambda: pick(socket.SOCK_STREAM)
    udp = lambda: pick(socket.SOCK_DGRAM)
    try:
        return config_services_on(unix_path, tcp, tcp6, udp)
    finally:
        for s in held:
            s.close()


def config_services_on(unix_path, tcp, tcp6, udp):
    return {
        'echo': {'listen': 'tcp://127.0.0.1:%d, udp://127.0.0.1:%d, tcp://[::1]:%d, '
                           'udp://[::1]:%d' % (tcp(), udp(), tcp6(), udp())},
        'daytime': {'plugin': 'time', 'format': 'daytime',
                    'listen': 'tcp://*:%d, udp://0.0.0.0:%d' % (tcp6(), udp())},
        'time': {'listen': 'tcp://0.0.0.0:%d, udp://*:%d' % (tcp(), udp())},
        'qotd': {'quotes': QUOTES, 'listen': 'tcp://[::]:%d, udp://127.0.0.1:%d'
                 % (tcp6(), udp())},
        # discard's udp:// has nothing to judge: skipped, no line.
        'discard': {'listen': 'tcp://127.0.0.1:%d, udp://127.0.0.1:%d' % (tcp(), udp())},
        'chargen': {'listen': 'tcp://127.0.0.1:%d' % tcp()},
        'http': {'listen': 'tcp://127.0.0.1:%d, tcp://[::1]:%d, unix:%s'
                 % (tcp(), tcp6(), unix_path)},
        # healthz and readyz disabled: metrics is the path checked.
        'web': {'plugin': 'http', 'healthz': '', 'readyz': '',
                'listen': 'tcp://127.0.0.1:%d' % tcp()},
    }


def config_lines(services):
    """The label and message pattern of every line --config must print,
    in file order, from the services as written."""
    scheme = {'echo': 'echo', 'daytime': 'daytime', 'time': 'time', 'qotd': 'qotd',
              'discard': 'discard', 'chargen': 'chargen', 'http': 'http', 'web': 'http'}
    path = {'http': '/healthz', 'web': '/metrics'}
    msg = {'echo': '256 bytes echoed', 'daytime': "'[A-Z][a-z]+day, .*-UTC'",
           'time': r'offset [-+][01]\.\d s', 'qotd': r'\d+-byte quote',
           'discard': '256 bytes discarded', 'chargen': '256 bytes of RFC 864 pattern',
           'http': '200', 'web': '200'}
    out = []
    for name, keys in services.items():
        for a in (x.strip() for x in keys['listen'].split(',')):
            kind, _, rest = a.partition(':')
            if kind == 'udp' and name == 'discard':
                continue
            if kind == 'unix':
                label = '[%s] %s://localhost%s via %s' % (name, scheme[name],
                                                         path.get(name, ''), a)
            else:
                host, port = rest[2:].rsplit(':', 1)
                host = {'*': '127.0.0.1', '0.0.0.0': '127.0.0.1', '[::]': '[::1]'}.get(host, host)
                label = '[%s] %s%s://%s:%s%s' % (name, scheme[name],
                                                '+udp' if kind == 'udp' else '',
                                                host, port, path.get(name, ''))
            out.append((label, msg[name]))
    return out


def test_ringd_config_self_check(ctx):
    unix_path = os.path.join(ctx.tempdir(), 'http.sock')
    services = config_services(unix_path)
    d = ctx.daemon(services)
    want = config_lines(services)
    assert len(want) == 16, want
    # The same file ringd runs with: one OK line per listener, exit 0.
    expect(ctx, 0, ['OK - %s %s in %s%s' % (esc(l), m, MS, PERF) for l, m in want],
           '--config', d.conf)
    # URLs come first, then the file's listeners.
    echo = url('echo', d.addr('tcp', 'echo'))
    expect(ctx, 0, ['OK - %s .*' % esc(echo)] + ['OK - %s .*' % esc(l) for l, _ in want],
           '--config', d.conf, echo)
    rc, lines, _ = probe(ctx, '--json', '--config', d.conf)
    doc = json.loads(lines[0])
    assert rc == 0 and doc['status'] == 'OK', doc
    assert [t['url'] for t in doc['targets']] == [l for l, _ in want], doc
    rc, lines, _ = probe(ctx, '--prometheus', '--config', d.conf)
    assert rc == 0, lines
    for l, _ in want:
        assert 'probe_success{target="%s"} 1' % l in lines, (l, lines)

    # One service whose port nothing listens on: CRITICAL for it alone.
    dead = free_port()
    broken = os.path.join(ctx.tempdir(), 'broken.ini')
    with open(d.conf) as f, open(broken, 'w') as g:
        g.write(f.read() + '\n[echo2]\nplugin = echo\nlisten = tcp://127.0.0.1:%d\n' % dead)
    expect(ctx, 2, ['OK - %s .*' % esc(l) for l, _ in want]
           + [r'CRITICAL - \[echo2\] echo://127\.0\.0\.1:%d connection refused%s'
              % (dead, PERF)], '--config', broken)
    d.stop()
    # The whole daemon gone: every line CRITICAL.
    rc, lines, _ = probe(ctx, '--timeout', '500ms', '--config', d.conf)
    assert rc == 2 and len(lines) == len(want), (rc, lines)
    assert all(l.startswith('CRITICAL - ') for l in lines), lines


def test_config_bad_files(ctx):
    d = ctx.tempdir()

    def ini(name, text):
        path = os.path.join(d, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    bad = ini('bad.ini', '[ringd]\nworkers = 2\n\n[echo]\nlisten = tcp://localhost:7\n')
    expect(ctx, 3, [r"UNKNOWN - ringd-probe: %s:5: \[echo\] listen: not a numeric "
                    r"address: 'localhost' \(use 127\.0\.0\.1 or \[::1\]\)" % esc(bad)],
           '--config', bad)
    syntax = ini('syntax.ini', '[echo]\nlisten = tcp://127.0.0.1:7\n[oops\n')
    expect(ctx, 3, [r"UNKNOWN - ringd-probe: %s:3: expected '\]' at the end of the section "
                    r"header" % esc(syntax)], '--config', syntax)
    missing = os.path.join(d, 'missing.ini')
    expect(ctx, 3, [r'UNKNOWN - ringd-probe: %s: cannot open: No such file or directory'
                    % esc(missing)], '--config', missing)
    # Nothing the probe can check: UNKNOWN, never a silent OK.
    only = ini('only.ini', '[discard]\nlisten = udp://127.0.0.1:9\n')
    expect(ctx, 3, [r'UNKNOWN - ringd-probe: %s: nothing to probe \(1 listeners without '
                    r'a check\)' % esc(only)], '--config', only)
    zero = ini('zero.ini', '[echo]\nlisten = tcp://127.0.0.1:0\n')
    expect(ctx, 3, [r'UNKNOWN - \[echo\] echo://127\.0\.0\.1:0 port 0 is chosen when '
                    r'ringd starts: not in the file'], '--config', zero)


# -- scripted listeners -----------------------------------------------------

class Listener:
    """A loopback TCP or UDP server whose handler runs per connection (or
    per datagram) in a thread; closed by the test."""

    def __init__(self, ctx, handler, udp=False, listen=True):
        self.sock = socket.socket(socket.AF_INET,
                                  socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.handler, self.udp, self.stop = handler, udp, threading.Event()
        self.conns = []
        if not udp:
            self.sock.listen(16)
        if listen:
            self.thread = threading.Thread(target=self.serve, daemon=True)
            self.thread.start()
        # The harness closes what ctx.daemons holds after every case.
        ctx.daemons.append(self)

    def serve(self):
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                if self.udp:
                    data, peer = self.sock.recvfrom(65536)
                    self.handler(self.sock, data, peer)
                    continue
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(c)
            threading.Thread(target=self.run_one, args=(c,), daemon=True).start()

    def run_one(self, c):
        try:
            self.handler(c)
        except OSError:
            pass

    def command(self):
        return ['listener', str(self.port)]

    def stderr(self):
        return ''

    def close(self):
        self.stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


def reset(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    c.close()


def stall(c):
    time.sleep(5)


def sender(data, then_close=True, read=False):
    """Sends data, then closes or stays. read: takes the request first,
    since closing with unread input resets the connection."""
    def h(c):
        if read:
            c.settimeout(2)
            c.recv(65536)
        c.sendall(data)
        if then_close:
            c.close()
        else:
            time.sleep(5)
    return h


def half_echo(c):
    got = c.recv(65536)
    c.sendall(got[:len(got) // 2])
    c.close()


def flipped_echo(c):
    got = c.recv(65536)
    c.sendall(bytes(b ^ 0xff for b in got))
    time.sleep(2)


def flood(prefix=b''):
    def h(c):
        c.sendall(prefix)
        chunk = b'A' * 65536
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            c.sendall(chunk)
    return h


def chargen_bytes(n, first=0):
    out = bytearray()
    line = first
    while len(out) < n:
        out += bytes(0x20 + (line + i) % 95 for i in range(72)) + b'\r\n'
        line += 1
    return bytes(out[:n])


def test_error_paths(ctx):
    closed = free_port()
    u = 'echo://127.0.0.1:%d' % closed
    expect(ctx, 2, ['CRITICAL - %s connection refused%s' % (esc(u), PERF)], u)
    cases = [
        # The RST may beat the handshake's completion to the probe.
        ('echo', reset, r'connection reset by peer( after 0 bytes)?'),
        ('echo', half_echo, r'short reply: 128 of 256 bytes, then close'),
        ('echo', sender(b'x' * 300, then_close=False),
         r'echo returned more than the 256 bytes sent'),
        # Every byte flipped, so the first differs whatever the payload.
        ('echo', flipped_echo, r'echo reply differs at byte 0'),
        ('daytime', sender(b'\x01\x02garbage\r\n'), r'daytime reply is not one printable line'),
        ('daytime', sender(b''), r'closed without a reply'),
        ('time', sender(b'garbage!'), r'time reply longer than 4 bytes'),
        ('time', sender(b'\0\0'), r'time reply of 2 bytes, not 4'),
        # 1900-01-01T00:00:01, read across the wrap as 2036.
        ('time', sender(b'\0\0\0\1'), r'clock offset \+\d+\.\d s exceeds 2\.0 s'),
        ('qotd', sender(b'q\x00uote\r\n'), r'quote is not printable ASCII'),
        ('chargen', sender(chargen_bytes(100)), r'short reply: 100 of 256 bytes, then close'),
        ('chargen', sender(b'\r\n' + chargen_bytes(300)), r'not the RFC 864 pattern at byte 0'),
        ('discard', sender(b'hello', then_close=False), r'discard answered 5 bytes'),
        ('http', sender(b'SSH-2.0-OpenSSH_9.2\r\n'), r'not an HTTP/1\.x status line'),
        ('http', sender(b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', read=True),
         r'200, body cut short at 3 of 10 bytes'),
        ('http', sender(b'HTTP/1.1 200 OK\r\nConte', read=True), r'closed in the response head after 22 bytes'),
        ('http', sender(b'', read=True), r'closed without a response'),
        ('http', stall, r'timeout after 0\.5 s, 0 bytes received'),
    ]
    for scheme, handler, msg in cases:
        srv = Listener(ctx, handler)
        u = '%s://127.0.0.1:%d%s' % (scheme, srv.port, '/' if scheme == 'http' else '')
        expect(ctx, 2, ['CRITICAL - %s %s%s' % (esc(u), msg, PERF)], '-t', '0.5', u)
        srv.close()
    # HTTP with no body framing ends at the close; chunked at its last chunk.
    srv = Listener(ctx, sender(b'HTTP/1.0 200 OK\r\n\r\nstreamed body', read=True))
    u = 'http://127.0.0.1:%d/' % srv.port
    expect(ctx, 0, ['OK - %s 200 in %s%s' % (esc(u), MS, PERF)], '--expect-body', 'streamed', u)
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
    srv = Listener(ctx, sender(chunked + b'4\r\nwxyz\r\n3\r\n ok\r\n0\r\n\r\n',
                               then_close=False, read=True))
    u = 'http://127.0.0.1:%d/' % srv.port
    # Decoded: the regex sees "wxyz ok", not the chunk sizes between.
    expect(ctx, 0, ['OK - %s 200 in %s%s' % (esc(u), MS, PERF)], '-t', '3',
           '--expect-body', '^wxyz ok$', u)
    for body, msg in ((b'4\r\nwxyzjunk', 'bad chunked body: chunk not followed by CRLF'),
                      (b'4\r\nwx', 'chunked body cut short after 2 bytes'),
                      # More than the probe keeps without --expect-body.
                      (b'8000\r\n' + b'y' * 20000,
                       'chunked body cut short after 20000 bytes')):
        srv = Listener(ctx, sender(chunked + body, read=True))
        u = 'http://127.0.0.1:%d/' % srv.port
        expect(ctx, 2, ['CRITICAL - %s 200, %s%s' % (esc(u), msg, PERF)], '-t', '3', u)


def test_timeouts_and_stalls(ctx):
    # A listener that never accepts: the handshake completes in the
    # kernel's backlog, the service never answers.
    srv = Listener(ctx, None, listen=False)
    for scheme in ('echo', 'daytime', 'time', 'qotd', 'chargen'):
        u = '%s://127.0.0.1:%d' % (scheme, srv.port)
        t0 = time.monotonic()
        expect(ctx, 2, [r'CRITICAL - %s timeout after 0\.3 s, 0 bytes received%s'
                        % (esc(u), PERF)], '--timeout', '300ms', u)
        assert time.monotonic() - t0 < 3, 'the probe overran its timeout'
    # UDP: nobody answers, but the port is open, so no ICMP refusal.
    mute = Listener(ctx, lambda s, d, p: None, udp=True)
    u = 'echo+udp://127.0.0.1:%d' % mute.port
    expect(ctx, 2, [r'CRITICAL - %s timeout after 0\.4 s, 0 bytes received%s' % (esc(u), PERF)],
           '-t', '0.4', u)
    # UDP: a closed port refuses through ICMP.
    u = 'time+udp://127.0.0.1:%d' % free_port(type_=socket.SOCK_DGRAM)
    expect(ctx, 2, ['CRITICAL - %s connection refused%s' % (esc(u), PERF)], u)
    # UDP: a wrong echo, a time reply of the wrong size.
    wrong = Listener(ctx, lambda s, d, p: s.sendto(d[::-1] + b'!', p), udp=True)
    u = 'echo+udp://127.0.0.1:%d' % wrong.port
    expect(ctx, 2, [r'CRITICAL - %s echo datagram of 257 bytes differs from the 256 sent%s'
                    % (esc(u), PERF)], u)
    u = 'time+udp://127.0.0.1:%d' % wrong.port
    expect(ctx, 2, [r'CRITICAL - %s time reply of 1 bytes, not 4%s' % (esc(u), PERF)], u)
    # A full accept queue drops further SYNs: the connect itself times out.
    full = socket.socket()
    full.bind(('127.0.0.1', 0))
    full.listen(0)
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(full.getsockname())
        fillers.append(c)
    time.sleep(0.2)
    try:
        u = 'http://127.0.0.1:%d/' % full.getsockname()[1]
        expect(ctx, 2, [r'CRITICAL - %s timeout after 0\.5 s connecting%s' % (esc(u), PERF)],
               '-t', '0.5', u)
    finally:
        for c in fillers + [full]:
            c.close()
    # Several stalled targets time out together, not one after another.
    t0 = time.monotonic()
    us = ['echo://127.0.0.1:%d' % srv.port] * 6
    expect(ctx, 2, [r'CRITICAL - .* timeout after 0\.5 s, .*'] * 6, '-t', '0.5', *us)
    assert time.monotonic() - t0 < 2.5, 'targets were not checked concurrently'


def slow_http(delay):
    def h(c):
        c.settimeout(2)
        c.recv(65536)
        time.sleep(delay)
        c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n')
        time.sleep(1)
    return h


def test_slow_service_thresholds(ctx):
    srv = Listener(ctx, slow_http(0.3))
    u = 'http://127.0.0.1:%d/' % srv.port
    slow = r'%s 200 in [3-9]\d\d\.\d\d ms \| time=0\.[3-9]\d{5}s' % esc(u)
    expect(ctx, 0, ['OK - ' + slow], u)
    expect(ctx, 1, ['WARNING - ' + slow + r';0\.100000;1\.000000'],
           '--warn', '100ms', '--crit', '1s', u)
    expect(ctx, 2, ['CRITICAL - ' + slow + r';0\.100000;0\.200000'],
           '--warn', '100ms', '--crit', '200ms', u)
    # Slower than the timeout is no answer at all.
    expect(ctx, 2, [r'CRITICAL - %s timeout after 0\.2 s, 0 bytes received%s' % (esc(u), PERF)],
           '-t', '200ms', u)
    # A slow try is no loss, but it is the target's verdict.
    expect(ctx, 1, ['WARNING - ' + slow + ';0.100000;'] * 2
           + ['--- %s statistics ---' % esc(u),
              r'2 tries, 2 ok, 0% loss, min/avg/max/p50/p99 = [3-9]\d\d\.\d+/.*'],
           '--warn', '100ms', '--count', '2', '--interval', '10ms', u)


def test_floods_stay_bounded(ctx):
    cases = [
        ('qotd', flood(), r'quote of 512 bytes or more'),
        ('daytime', flood(), r'daytime reply longer than 1024 bytes'),
        ('time', flood(), r'time reply longer than 4 bytes'),
        ('http', flood(b'HTTP/1.1 200 OK\r\n'), r'response head over 16384 bytes'),
        ('http', flood(b'HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n'),
         r'timeout after 1\.0 s, \d+ bytes received'),
        ('http', flood(b'HTTP/1.1 200 OK\r\n\r\n'), r'timeout after 1\.0 s, \d+ bytes received'),
    ]
    for scheme, handler, msg in cases:
        srv = Listener(ctx, handler)
        u = '%s://127.0.0.1:%d%s' % (scheme, srv.port, '/' if scheme == 'http' else '')
        _, rss = expect(ctx, 2, ['CRITICAL - %s %s%s' % (esc(u), msg, PERF)],
                        '-t', '1', '--expect-body', 'x', u)
        srv.close()
        # The loop's buffer pool, a kept head and body: a few MiB, not
        # what the server sent (sanitizer builds carry their shadow).
        limit = 200 * 1024 if harness.sanitized(PROBE) else 32 * 1024
        assert 0 < rss < limit, 'peak RSS %d KiB on a %s flood' % (rss, scheme)


def test_bad_input(ctx):
    expect(ctx, 3, [r'UNKNOWN - gopher://h bad URL: unknown scheme'], 'gopher://h')
    expect(ctx, 3, [r'UNKNOWN - echo://h:99999 bad URL: bad port \(1-65535\)'], 'echo://h:99999')
    expect(ctx, 3, [r'UNKNOWN - 127\.0\.0\.1 bad URL: not a URL \(SCHEME://HOST\[:PORT\]\)'],
           '127.0.0.1')
    expect(ctx, 3, [r'UNKNOWN - echo://no-such-host\.invalid cannot resolve '
                    r'no-such-host\.invalid: .*'], 'echo://no-such-host.invalid')
    expect(ctx, 3, [r'UNKNOWN - ringd-probe: --timeout wants a duration \(2s, 500ms\): x'],
           '--timeout', 'x', 'echo://h')
    expect(ctx, 3, [r'UNKNOWN - ringd-probe: no target: give a URL or --config FILE \(--help\)'])
    expect(ctx, 3, [r'UNKNOWN - echo\+udp://127\.0\.0\.1:7 --size over 65507 bytes for UDP'],
           '--size', '70000', 'echo+udp://127.0.0.1:7')
    if ctx.backend == 'auto-no-uring':
        # An explicit io_uring that cannot start is UNKNOWN, never epoll.
        # A build without io_uring says so instead of what seccomp did.
        expect(ctx, 3, [r'UNKNOWN - ringd-probe: loop: (Operation not permitted: .*'
                        r'|built without io_uring)'],
               '--backend', 'io_uring', 'echo://127.0.0.1:7')


# -- servers nobody here wrote ----------------------------------------------

def need(prog):
    path = shutil.which(prog) or shutil.which(prog, path='/usr/sbin:/sbin')
    if not path:
        raise harness.Skip('%s is not installed' % prog)
    return path


def start_group(cmd, log):
    """Starts cmd in a process group of its own (socat and xinetd fork
    children); the test ends that group by its leader's PID."""
    with open(log, 'wb') as f:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_group(p):
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


def wait_tcp(port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, 'server exited with %s' % proc.returncode
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError('nothing listens on port %d' % port)


def start_nginx(ctx, locations):
    """nginx-light on a free loopback port, serving these location blocks
    with ROOT/html as its root; returns (process, port, ROOT) once it
    accepts. The caller ends it with stop_group()."""
    nginx = need('nginx')
    d = ctx.tempdir()
    os.chmod(d, 0o755)  # nginx's worker runs as nobody under root
    os.makedirs(os.path.join(d, 'html'))
    os.makedirs(os.path.join(d, 'tmp'))
    port = free_port()
    conf = os.path.join(d, 'nginx.conf')
    with open(conf, 'w') as f:
        f.write('''worker_processes 1;
error_log %(d)s/error.log;
pid %(d)s/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(d)s/tmp; proxy_temp_path %(d)s/tmp;
    fastcgi_temp_path %(d)s/tmp; uwsgi_temp_path %(d)s/tmp; scgi_temp_path %(d)s/tmp;
    server {
        listen 127.0.0.1:%(port)d;
        root %(d)s/html;
%(locations)s
    }
}
''' % {'d': d, 'port': port, 'locations': locations})
    p = start_group([nginx, '-p', d, '-c', conf, '-g', 'daemon off;'], os.path.join(d, 'log'))
    try:
        wait_tcp(port, p)
    except BaseException:
        stop_group(p)
        raise
    return p, port, d


def test_nginx(ctx):
    p, port, d = start_nginx(ctx, '''        location = /ok { return 200 "all good\\n"; }
        location = /down { return 503; }
        location = /big { limit_rate 64k; }''')
    try:
        with open(os.path.join(d, 'html', 'big'), 'wb') as f:
            f.write(b'z' * (4 << 20))
        base = 'http://127.0.0.1:%d' % port
        ok, down, big = base + '/ok', base + '/down', base + '/big'
        expect(ctx, 0, ['OK - %s 200 in %s%s' % (esc(ok), MS, PERF)],
               '--expect-body', '^all good$', '--expect-header', 'Server: nginx', ok)
        expect(ctx, 2, ['CRITICAL - %s 200, body does not match --expect-body, in %s%s'
                        % (esc(ok), MS, PERF)], '--expect-body', 'bad', ok)
        expect(ctx, 2, ['CRITICAL - %s 503, expected 200-399, in %s%s' % (esc(down), MS, PERF)],
               down)
        expect(ctx, 0, ['OK - %s 503 in %s%s' % (esc(down), MS, PERF)],
               '--expect-status', '500-599', down)
        t0 = time.monotonic()
        expect(ctx, 2, [r'CRITICAL - %s timeout after 1\.0 s, \d+ bytes received%s'
                        % (esc(big), PERF)], '-t', '1', big)
        assert time.monotonic() - t0 < 4
        expect(ctx, 0, ['OK - %s 200 in %s%s' % (esc(big), MS, PERF)],
               '--method', 'HEAD', '--expect-header', 'Content-Length: ^4194304$', big)
        expect(ctx, 2, ['OK - .*', 'CRITICAL - .*', 'CRITICAL - .*timeout.*'],
               '-t', '1', ok, down, big)
    finally:
        stop_group(p)


XINETD_SERVICES = ('echo', 'daytime', 'time', 'chargen', 'discard')


def test_xinetd(ctx):
    xinetd = need('xinetd')
    d = ctx.tempdir()
    ports = {}
    blocks = []
    for name in XINETD_SERVICES:
        for kind, proto in (('stream', 'tcp'), ('dgram', 'udp')):
            port = free_port(type_=socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
            ports[name, proto] = port
            blocks.append('''service %s
{
    type = INTERNAL UNLISTED
    id = %s-%s
    socket_type = %s
    protocol = %s
    wait = %s
    user = root
    port = %d
    bind = 127.0.0.1
}
''' % (name, name, kind, kind, proto, 'no' if proto == 'tcp' else 'yes', port))
    conf = os.path.join(d, 'xinetd.conf')
    with open(conf, 'w') as f:
        f.write('defaults\n{\n}\n' + '\n'.join(blocks))
    log = os.path.join(d, 'xinetd.log')
    if os.geteuid() != 0:
        raise harness.Skip('xinetd needs root for its services here')
    p = start_group([xinetd, '-dontfork', '-filelog', log, '-f', conf,
                     '-pidfile', os.path.join(d, 'pid')], os.path.join(d, 'out'))
    try:
        deadline = time.monotonic() + 10
        while True:
            assert p.poll() is None, 'xinetd exited: %s' % open(log).read()
            text = open(log).read() if os.path.exists(log) else ''
            if 'Started working' in text:
                break
            assert time.monotonic() < deadline, 'xinetd did not start: %s' % text
            time.sleep(0.05)
        assert 'Started working: 10 available services' in text, text
        t = [
            ('echo://127.0.0.1:%d' % ports['echo', 'tcp'], '256 bytes echoed in ' + MS),
            ('echo+udp://127.0.0.1:%d' % ports['echo', 'udp'], '256 bytes echoed in ' + MS),
            ('daytime://127.0.0.1:%d' % ports['daytime', 'tcp'], "'.+' in " + MS),
            ('daytime+udp://127.0.0.1:%d' % ports['daytime', 'udp'], "'.+' in " + MS),
            ('time://127.0.0.1:%d' % ports['time', 'tcp'], r'offset [-+][01]\.\d s in ' + MS),
            ('time+udp://127.0.0.1:%d' % ports['time', 'udp'], r'offset [-+][01]\.\d s in ' + MS),
            ('chargen://127.0.0.1:%d' % ports['chargen', 'tcp'],
             '256 bytes of RFC 864 pattern in ' + MS),
            ('discard://127.0.0.1:%d' % ports['discard', 'tcp'], '256 bytes discarded in ' + MS),
        ]
        expect(ctx, 0, ['OK - %s %s%s' % (esc(u), m, PERF) for u, m in t], *[u for u, _ in t])
        cg = 'chargen://127.0.0.1:%d' % ports['chargen', 'tcp']
        expect(ctx, 0, ['OK - %s 100000 bytes of RFC 864 pattern in %s%s' % (esc(cg), MS, PERF)],
               '--size', '100000', cg)
        # xinetd's UDP discard and chargen are not URLs the probe knows.
        expect(ctx, 3, [r'UNKNOWN - discard\+udp://127\.0\.0\.1:\d+ bad URL: unknown scheme'],
               'discard+udp://127.0.0.1:%d' % ports['discard', 'udp'])
    finally:
        stop_group(p)


def test_socat_listeners(ctx):
    socat = need('socat')
    d = ctx.tempdir()
    cases = [
        # Closes at once: every stream protocol sees its own failure.
        ('SYSTEM:true', 'echo', r'short reply: 0 of 256 bytes, then close'),
        ('SYSTEM:true', 'http', r'closed without a response'),
        ('SYSTEM:true', 'time', r'time reply of 0 bytes, not 4'),
        # Answers garbage.
        # socat closes at once after a short SYSTEM, racing our request
        # (an RST may drop what it wrote): the line stays open a while.
        ("SYSTEM:'echo hello world; sleep 2'", 'http', r'not an HTTP/1\.x status line'),
        ("SYSTEM:'echo hello world'", 'time', r'time reply longer than 4 bytes'),
        ("SYSTEM:'echo hello world'", 'chargen', r'not the RFC 864 pattern at byte 1'),
        # Stalls: accepted, never answered.
        ("SYSTEM:'sleep 10'", 'daytime', r'timeout after 0\.5 s, 0 bytes received'),
        ("SYSTEM:'sleep 10'", 'http', r'timeout after 0\.5 s, 0 bytes received'),
    ]
    for i, (peer, scheme, msg) in enumerate(cases):
        port = free_port()
        p = start_group([socat, 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork' % port, peer],
                        os.path.join(d, 'socat%d.log' % i))
        try:
            wait_tcp(port, p)
            u = '%s://127.0.0.1:%d%s' % (scheme, port, '/' if scheme == 'http' else '')
            expect(ctx, 2, ['CRITICAL - %s %s%s' % (esc(u), msg, PERF)], '-t', '0.5', u)
        finally:
            stop_group(p)
    # A socat echo (a server nobody here wrote) is a fine echo service.
    port = free_port()
    p = start_group([socat, 'TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork' % port, 'PIPE'],
                    os.path.join(d, 'socat-echo.log'))
    try:
        wait_tcp(port, p)
        u = 'echo://127.0.0.1:%d' % port
        expect(ctx, 0, ['OK - %s 65536 bytes echoed in %s%s' % (esc(u), MS, PERF)],
               '--size', '64k', u)
    finally:
        stop_group(p)


def main(cases):
    """Runs the cases once RINGD_PROBE names an executable probe."""
    if not PROBE or not os.access(PROBE, os.X_OK):
        print('RINGD_PROBE does not name the built ringd-probe')
        raise SystemExit(1)
    harness.main(cases)


if __name__ == '__main__':
    main([
        test_ringd_every_service_tcp_and_udp,
        test_ringd_http_verdicts,
        test_ringd_unix_socket,
        test_ringd_json_prometheus_count,
        test_ringd_config_self_check,
        test_config_bad_files,
        test_error_paths,
        test_timeouts_and_stalls,
        test_slow_service_thresholds,
        test_floods_stay_bounded,
        test_bad_input,
        test_nginx,
        test_xinetd,
        test_socat_listeners,
    ])
