#!/usr/bin/env python3
"""SIGHUP reload: a valid file is applied without dropping a connection or
a byte (unchanged listeners keep their very socket), an invalid one leaves
the running configuration serving and says what and where, and the
supervisor hears RELOADING=1 / MONOTONIC_USEC= then READY=1 around it."""

import errno
import os
import random
import re
import signal
import socket
import threading
import time

import harness
from harness import DaemonError, connect, payload, recv_exact

RELOAD_TIMEOUT = 10.0


def free_port():
    """A port nobody listens on right now (for a listener a reload adds)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def write_ini(d, text):
    # Written whole and renamed, so the daemon never reads half a file.
    tmp = d.conf + '.new'
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, d.conf)


def reload(d, text=None, expect_ok=True, sent=False):
    """Rewrite the INI (when text is given), SIGHUP (unless the caller has
    sent it), and wait for the READY=1 that ends the reload. Returns the
    notify datagrams of this reload; on a success the new listen= addresses
    replace d.listen."""
    if text is not None:
        write_ini(d, text)
    if not sent:
        d._drain_notify()
    first = len(d.messages)
    if not sent:
        d.signal(signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while time.monotonic() < deadline:
        if d._read_notify(0.05) is None:
            if not d.alive():
                raise DaemonError('ringd exited during a reload; stderr:\n' + d.stderr())
            continue
        if 'READY=1' in d.messages[-1].split('\n'):
            break
    else:
        raise DaemonError('no READY=1 within %.0f s of SIGHUP; notify=%r stderr:\n%s'
                          % (RELOAD_TIMEOUT, d.messages[first:], d.stderr()))
    msgs = d.messages[first:]
    status = [l[len('STATUS='):] for m in msgs for l in m.split('\n')
              if l.startswith('STATUS=')]
    assert status, 'READY=1 after SIGHUP without a STATUS= line: %r' % msgs
    ok = status[-1].startswith('running ')
    if ok != expect_ok:
        raise DaemonError('reload %s, expected it to %s: STATUS=%s; stderr:\n%s'
                          % ('succeeded' if ok else 'failed',
                             'succeed' if expect_ok else 'fail', status[-1], d.stderr()))
    if ok:
        d.status = d._parse_status(status[-1])
        d.listen = harness.parse_listen(d.status.get('listen', ''))
    return msgs


def echo_once(addr, data=b'still here\n'):
    with connect(addr, timeout=5) as s:
        s.sendall(data)
        got = recv_exact(s, len(data), timeout=5)
    assert got == data, 'echo on %s returned %r' % (addr, got)


def wait_refused(addr, timeout=5.0):
    """Connecting to addr is refused within timeout (a listener that went
    away; its SYN filter may delay the answer by a retransmission)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with connect(addr, timeout=3) as s:
                s.sendall(b'x')
                s.settimeout(1.0)
                s.recv(10)
        except ConnectionRefusedError:
            return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError('%s still accepts connections %.0f s after the reload'
                         % (addr, timeout))


def released(d):
    return d.stderr().count('previous configuration released')


def wait_released(d, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while released(d) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert released(d) >= n, ('%d of %d previous configurations released; stderr:\n%s'
                              % (released(d), n, d.stderr()))


def listener_inodes(pid):
    """{port: socket inode} of the TCP sockets in LISTEN that pid holds."""
    mine = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            m = re.fullmatch(r'socket:\[(\d+)\]', os.readlink('/proc/%d/fd/%s' % (pid, fd)))
        except OSError:
            continue
        if m:
            mine.add(int(m.group(1)))
    out = {}
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == '0A' and int(fields[9]) in mine:
                    out.setdefault(int(fields[1].split(':')[1], 16), set()).add(int(fields[9]))
    return out


# -- (a) clients under load while reloads happen -----------------------------

class Load:
    """Echo streams that verify every byte, HTTP keep-alive and
    connection-per-request clients; each thread records what went wrong."""

    def __init__(self, d):
        self.d = d
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.echo_bytes = 0
        self.http_ok = 0
        self.reconnects = 0
        self.datagrams = 0
        self.threads = []

    def fail(self, what):
        with self.lock:
            self.errors.append(what)

    def run(self, fn, n):
        for i in range(n):
            t = threading.Thread(target=self._guard, args=(fn, i), daemon=True)
            t.start()
            self.threads.append(t)

    def _guard(self, fn, i):
        try:
            fn(i)
        except Exception as e:  # every failure is the test's verdict
            self.fail('%s#%d: %r' % (fn.__name__, i, e))

    def echo(self, i):
        rnd = random.Random(i)
        addr = self.d.addr('tcp', 'echo')
        seed = i * 1000
        while not self.stop.is_set():
            with connect(addr, timeout=10) as s:
                for _ in range(rnd.randint(5, 40)):
                    data = payload(rnd.randint(1, 96 * 1024), seed)
                    seed += 1
                    # Sent from a thread: a large chunk would otherwise
                    # fill both directions and stall.
                    t = threading.Thread(target=s.sendall, args=(data,), daemon=True)
                    t.start()
                    got = recv_exact(s, len(data), timeout=10)
                    t.join(10)
                    if got != data:
                        raise AssertionError('echo corrupted %d bytes' % len(data))
                    with self.lock:
                        self.echo_bytes += len(data)
                s.shutdown(socket.SHUT_WR)
                s.settimeout(10)
                if s.recv(1) != b'':
                    raise AssertionError('echo sent bytes nobody asked for')

    @staticmethod
    def _response(s, buf):
        """One response from s (buf: bytes already read). Returns (status,
        body, close, rest); raises EOFError when the connection ended before
        any byte of it."""
        while b'\r\n\r\n' not in buf:
            b = s.recv(65536)
            if not b:
                if buf:
                    raise AssertionError('connection closed in a response head: %r' % buf)
                raise EOFError
            buf += b
        head, _, rest = buf.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        status = int(lines[0].split()[1])
        fields = {l.split(':', 1)[0].strip().lower(): l.split(':', 1)[1].strip()
                  for l in lines[1:]}
        n = int(fields.get('content-length', '0'))
        while len(rest) < n:
            b = s.recv(65536)
            if not b:
                raise AssertionError('connection closed in a response body')
            rest += b
        return status, rest[:n], fields.get('connection', '').lower() == 'close', rest[n:]

    def keepalive(self, i):
        """Back-to-back requests on one connection. A retiring generation
        answers the next request with Connection: close instead of closing
        under it, so no request ever meets a closed connection: not even
        the retry RFC 9112 9.3.1 would allow is needed."""
        addr = self.d.addr('tcp', 'http')
        req = b'GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n'
        s, buf = None, b''
        while not self.stop.is_set():
            if s is None:
                s, buf = connect(addr, timeout=10), b''
            s.sendall(req)
            status, body, close, buf = self._response(s, buf)
            if status != 200 or body != b'ok\n':
                raise AssertionError('keep-alive /healthz: %d %r' % (status, body))
            with self.lock:
                self.http_ok += 1
                self.reconnects += close
            if close:
                s.close()
                s = None
        if s is not None:
            s.close()

    def per_request(self, i):
        addr = self.d.addr('tcp', 'http')
        req = b'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
        while not self.stop.is_set():
            with connect(addr, timeout=10) as s:
                s.sendall(req)
                status, body, _, _ = self._response(s, b'')
            if status != 200 or body != b'ok\n':
                raise AssertionError('/healthz: %d %r' % (status, body))
            with self.lock:
                self.http_ok += 1

    def udp(self, i):
        """One datagram at a time, each from a source of its own (the guard
        limits each source's rate), a hundred a second (within
        udp_global_rate): every one is answered, whichever generation
        reads the shared socket."""
        addr = self.d.addr('udp', 'echo')
        n = 0
        while not self.stop.is_set():
            data = b'dgram %d %d' % (i, n)
            got = harness.udp_echo(addr, data, src=(harness.random_loopback(), 0))[0]
            if got != data:
                raise AssertionError('UDP echo returned %r for %r' % (got, data))
            n += 1
            with self.lock:
                self.datagrams += 1
            time.sleep(0.01)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), 'a client thread hung'


def load_ini(ctx, extra=None, level='info'):
    services = {
        'echo': {'listen': 'tcp://127.0.0.1:0, udp://127.0.0.1:0'},
        'http': {'listen': 'tcp://127.0.0.1:0'},
    }
    services.update(extra or {})
    return ctx.ini(services, ringd={'log_level': level, 'shutdown_timeout': '10s'})


def test_reload_under_load_loses_nothing(ctx):
    d = ctx.daemon(ini=load_ini(ctx))
    pid = d.pid
    # Port 0 in the file: the kept listeners keep the ports they got.
    text = load_ini(ctx).replace('tcp://127.0.0.1:0, udp://127.0.0.1:0',
                                 'tcp://127.0.0.1:%d, udp://127.0.0.1:%d')
    text = text.replace('tcp://127.0.0.1:0', 'tcp://127.0.0.1:%d')
    text = text % (d.addr('tcp', 'echo').port, d.addr('udp', 'echo').port,
                   d.addr('tcp', 'http').port)
    write_ini(d, text)
    load = Load(d)
    load.run(load.echo, 4)
    load.run(load.keepalive, 2)
    load.run(load.per_request, 2)
    load.run(load.udp, 1)
    time.sleep(0.5)
    edits = [
        text.replace('log_level = info', 'log_level = notice'),
        text + '\n[discard]\nlisten = tcp://127.0.0.1:0\n',
        text.replace('workers = 2', 'workers = 1'),
        text.replace('[http]\n', '[http]\nidle_timeout = 30s\n'),
        text.replace('workers = 2', 'workers = 3'),
        text,
    ]
    for edit in edits:
        reload(d, edit)
        time.sleep(0.4)
        if load.errors:
            break
    time.sleep(0.5)
    load.finish()
    assert not load.errors, ('%d client failures across %d reloads: %s\nstderr:\n%s'
                             % (len(load.errors), len(edits), load.errors[:5], d.stderr()))
    assert load.echo_bytes > 1 << 20, 'only %d echo bytes went through' % load.echo_bytes
    assert load.http_ok > 100, 'only %d HTTP requests were served' % load.http_ok
    assert load.datagrams > 50, 'only %d datagrams were answered' % load.datagrams
    assert d.alive() and d.pid == pid
    wait_released(d, len(edits))
    assert load.reconnects > 0, 'no keep-alive connection was ended by a reload'
    print('  echo bytes verified: %d, HTTP responses: %d, keep-alive connections '
          'ended with Connection: close: %d, datagrams: %d'
          % (load.echo_bytes, load.http_ok, load.reconnects, load.datagrams))
    d.stop()


def test_reload_kept_listener_answers_at_once(ctx):
    """Right after READY=1 the kept listeners answer. Both engines wait on
    a listener exclusively, so a wakeup the retiring generation took as it
    stopped would leave a client queued with nobody told of it."""
    d = ctx.daemon({'echo': {'listen': 'tcp://127.0.0.1:0'},
                    'http': {'listen': 'tcp://127.0.0.1:0'}})
    for i in range(12):
        reload(d, ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:0'},
                           'http': {'listen': 'tcp://127.0.0.1:0'},
                           'discard': {'listen': 'tcp://127.0.0.1:0'}} if i % 2 else
                          {'echo': {'listen': 'tcp://127.0.0.1:0'},
                           'http': {'listen': 'tcp://127.0.0.1:0'}}))
        with connect(d.addr('tcp', 'echo'), timeout=2) as s:
            s.sendall(b'now')
            assert recv_exact(s, 3, timeout=2) == b'now', 'reload %d' % i
        with connect(d.addr('tcp', 'http'), timeout=2) as s:
            s.sendall(b'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
            got = harness.recv_until_eof(s, deadline=time.monotonic() + 2)
        assert got.startswith(b'HTTP/1.1 200'), 'reload %d: %r' % (i, got)
    d.stop()


# -- (b) a changed port; an unchanged listener keeps its socket --------------

def port_ini(ctx, echo_port, http_port):
    return ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:%d' % echo_port},
                    'http': {'listen': 'tcp://127.0.0.1:%d' % http_port}})


def test_reload_changed_port(ctx):
    a, b, h = free_port(), free_port(), free_port()
    d = ctx.daemon(ini=port_ini(ctx, a, h))
    old_addr = d.addr('tcp', 'echo')
    before = listener_inodes(d.pid)
    assert h in before and a in before, 'listeners %r, expected ports %d and %d' % (before, a, h)
    # Established before the reload: it must run on, and block nothing.
    s = connect(old_addr, timeout=5)
    s.sendall(b'one')
    assert recv_exact(s, 3) == b'one'
    # Queued in the kept listener's backlog while nobody accepts: the
    # daemon is stopped, and continued with the SIGHUP already pending.
    write_ini(d, port_ini(ctx, b, h))
    d._drain_notify()
    os.kill(d.pid, signal.SIGSTOP)
    try:
        queued = socket.create_connection(('127.0.0.1', h), timeout=5)
        queued.sendall(b'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        os.kill(d.pid, signal.SIGHUP)
    finally:
        os.kill(d.pid, signal.SIGCONT)
    reload(d, sent=True)
    new_addr = d.addr('tcp', 'echo')
    assert new_addr.port == b, 'echo moved to %r, expected port %d' % (new_addr, b)
    echo_once(new_addr)
    queued.settimeout(5)
    got = harness.recv_until_eof(queued, deadline=time.monotonic() + 5)
    queued.close()
    assert got.startswith(b'HTTP/1.1 200') and got.endswith(b'ok\n'), \
        'the connection queued during the reload got %r' % got
    after = listener_inodes(d.pid)
    assert after.get(h) == before[h], \
        'the unchanged http listener was rebound: inode %r -> %r' % (before[h], after.get(h))
    assert b in after, 'no listener on the new port %d: %r' % (b, after)
    # The old port refuses new clients while its connection still works.
    wait_refused(old_addr)
    s.sendall(b'two')
    assert recv_exact(s, 3) == b'two', 'the old port\'s connection stopped echoing'
    assert released(d) == 0, 'the old configuration went away under a live connection'
    s.close()
    wait_released(d, 1)
    assert a not in listener_inodes(d.pid), 'port %d still listened on' % a
    wait_refused(old_addr)
    # The old generation is gone and left the socket it handed over alone.
    assert listener_inodes(d.pid).get(h) == before[h]
    for _ in range(4):
        t0 = time.monotonic()
        with connect(d.addr('tcp', 'http'), timeout=5) as c:
            c.sendall(b'GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
            got = harness.recv_until_eof(c, deadline=time.monotonic() + 5)
        assert got.endswith(b'ok\n') and time.monotonic() - t0 < 0.5, got
    d.stop()


# -- (c) a service added, one removed ------------------------------------------

def test_reload_adds_and_removes_services(ctx):
    sock = os.path.join(ctx.tempdir(), 'discard.sock')
    d = ctx.daemon({'echo': {'listen': 'tcp://127.0.0.1:0'},
                    'discard': {'listen': 'tcp://127.0.0.1:0, unix:' + sock}})
    echo_addr, gone = d.addr('tcp', 'echo'), d.addr('tcp', 'discard')
    assert os.path.exists(sock)
    text = ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:%d' % echo_addr.port},
                    'chargen': {'listen': 'tcp://127.0.0.1:0'}})
    reload(d, text)
    assert 'discard' not in d.listen, 'discard still listed: %r' % d.status
    echo_once(d.addr('tcp', 'echo'))
    assert d.addr('tcp', 'echo').port == echo_addr.port
    with connect(d.addr('tcp', 'chargen'), timeout=5) as s:
        data = recv_exact(s, 200)
    assert b'!"#$%&' in data, 'chargen sent %r' % data[:80]
    wait_refused(gone)
    wait_released(d, 1)
    assert not os.path.exists(sock), 'the removed unix listener left its file'
    d.stop()


def test_reload_one_socket_goes_to_one_listener(ctx):
    """The port echo got for :0 is now discard's, and echo asks :0 again:
    discard takes the socket (its exact address goes first) and echo binds
    a new port, rather than both sharing one socket."""
    d = ctx.daemon({'echo': {'listen': 'tcp://127.0.0.1:0'}})
    p = d.addr('tcp', 'echo').port
    reload(d, ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:0'},
                       'discard': {'listen': 'tcp://127.0.0.1:%d' % p}}))
    assert d.addr('tcp', 'discard').port == p, d.status
    assert d.addr('tcp', 'echo').port != p, 'echo and discard share port %d' % p
    echo_once(d.addr('tcp', 'echo'))
    with connect(d.addr('tcp', 'discard'), timeout=5) as s:
        s.sendall(b'gone\n')
        s.settimeout(0.3)
        try:
            got = s.recv(16)
        except socket.timeout:
            got = b''
    assert got == b'', 'the discard port answered %r' % got
    d.stop()


def test_reload_keeps_unix_listener(ctx):
    sock = os.path.join(ctx.tempdir(), 'echo.sock')
    services = {'echo': {'listen': 'unix:' + sock}}
    d = ctx.daemon(services)
    ino = os.stat(sock).st_ino
    reload(d, ctx.ini(services, ringd={'shutdown_timeout': '6s'}))
    wait_released(d, 1)
    assert os.stat(sock).st_ino == ino, 'the kept unix socket file was replaced'
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(b'unix')
        assert recv_exact(s, 4) == b'unix'
    d.stop()
    assert not os.path.exists(sock), 'the unix socket file outlived the stop'


def test_reload_keeps_inherited_sockets(ctx):
    """Socket activation: a reload keeps the inherited sockets as it keeps
    its own, and they stay inherited: neither the retiring generation nor
    the final stop filters or shuts them down."""
    from test_activation import Launcher, filter_blocks, inode, socket_inodes
    la = Launcher(ctx)
    try:
        t, turl = la.tcp()
        ini = ctx.ini({'echo': {'listen': turl}})
        d = la.start(ini, [t], ['echo'])
        reload(d, ctx.ini({'echo': {'listen': turl},
                           'discard': {'listen': 'tcp://127.0.0.1:0'}}))
        wait_released(d, 1)
        assert inode(t) in socket_inodes(d.pid)
        assert filter_blocks(t) == 0, 'the retiring generation filtered an inherited socket'
        connect_fast(d.addr('tcp', 'echo'))
        d.stop()
        assert filter_blocks(t) == 0, 'the stop filtered an inherited socket'
        # Still listening, for the next ringd.
        c = socket.create_connection(t.getsockname(), timeout=2)
        c.close()
    finally:
        la.close()


# -- (d) broken files leave the running configuration serving -----------------

def quotes_ini(ctx, quotes, echo_port=0, extra=''):
    return ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:%d' % echo_port},
                    'qotd': {'listen': 'tcp://127.0.0.1:0', 'quotes': quotes,
                             'pick': 'sequential'}}) + extra


def qotd(d):
    with connect(d.addr('tcp', 'qotd'), timeout=5) as s:
        return harness.recv_until_eof(s, deadline=time.monotonic() + 5)


def write_quotes(path, text):
    with open(path + '.new', 'w') as f:
        f.write(text)
    os.rename(path + '.new', path)


def test_reload_broken_files_keep_serving(ctx):
    tmp = ctx.tempdir()
    quotes = os.path.join(tmp, 'quotes')
    write_quotes(quotes, 'the first quote\n')
    d = ctx.daemon(ini=quotes_ini(ctx, quotes))
    pid, echo_port = d.pid, d.addr('tcp', 'echo').port
    good = quotes_ini(ctx, quotes, echo_port)
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    busy = taken.getsockname()[1]
    lines = good.split('\n')
    qline = next(i for i, l in enumerate(lines) if l == '[qotd]') + 1
    cases = [
        ('syntax error', good + '[broken\n', r'ringd\.ini:%d: ' % (len(lines))),
        ('unknown key', good.replace('[echo]\n', '[echo]\nbogus = 1\n'),
         r'ringd\.ini:\d+: \[echo\] bogus'),
        ('missing quotes file', good.replace(quotes, quotes + '.missing'),
         r'ringd\.ini:%d: \[qotd\] quotes: .*' % (qline + 2)),
        ('port taken', good + '\n[discard]\nlisten = tcp://127.0.0.1:%d\n' % busy,
         r'discard: bind tcp://127.0.0.1:%d: Address already in use' % busy),
        ('missing user', good.replace('[ringd]\n', '[ringd]\nuser = ringd-no-such-user\n'),
         r'user = ringd-no-such-user: no such user'),
    ]
    try:
        for what, text, where in cases:
            msgs = reload(d, text, expect_ok=False)
            status = [l for m in msgs for l in m.split('\n') if l.startswith('STATUS=')][-1]
            assert status.startswith('STATUS=reload failed: ') and \
                status.endswith('(old configuration kept)'), '%s: %s' % (what, status)
            assert re.search(where, status), '%s: STATUS does not say %r: %s' % (what, where, status)
            assert re.search(where, d.stderr()), \
                '%s: the log does not say %r:\n%s' % (what, where, d.stderr())
            echo_once(d.addr('tcp', 'echo'))
            assert qotd(d) == b'the first quote\r\n'
            assert d.alive() and d.pid == pid
    finally:
        taken.close()
    assert 'discard' not in d.listen
    assert released(d) == 0, 'a failed reload replaced the running configuration'
    # The old configuration is still whole: a good file applies after all.
    write_quotes(quotes, 'the second quote\n')
    reload(d, good)
    assert qotd(d) == b'the second quote\r\n'
    d.stop()


def connect_fast(addr, limit=0.5):
    """A connect that a SYN filter would hold back for a retransmission
    (about 1 s) or a shut-down listener would refuse."""
    t0 = time.monotonic()
    echo_once(addr)
    took = time.monotonic() - t0
    assert took < limit, 'connecting to %s took %.2f s' % (addr, took)


def test_reload_worker_fails_to_start(ctx):
    """A new worker whose plugin fails to start: the reload fails, and the
    new generation's other worker, which had begun accepting on the kept
    sockets, stops without filtering or shutting them down; with per-worker
    sockets (reuseport) and with one shared socket."""
    from test_abi import plugin_dir
    core = {'plugin_dir': plugin_dir(ctx, 'refuse')}
    services = {'echo': {'listen': 'tcp://127.0.0.1:0'}}
    flaky = dict(services, flaky={'plugin': 'refuse', 'refuse_every': '0',
                                  'fail_start': '1', 'listen': 'tcp://127.0.0.1:0'})
    d = ctx.daemon(services, ringd=core)
    for n, reuseport in enumerate(('yes', 'no')):
        if reuseport == 'no':
            reload(d, ctx.ini(services, ringd=dict(core, reuseport='no')))
            wait_released(d, 1)
        msgs = reload(d, ctx.ini(flaky, ringd=dict(core, reuseport=reuseport)),
                      expect_ok=False)
        assert 'a worker of the new configuration failed to start' in msgs[-1], msgs
        assert 'worker: plugin failed to start svc=flaky plugin=refuse' in d.stderr(), d.stderr()
        assert 'flaky' not in d.listen
        for _ in range(8):
            connect_fast(d.addr('tcp', 'echo'))
        assert released(d) == n, 'a failed reload replaced the running configuration'
    d.stop()


def test_reload_changes_workers_and_backend(ctx):
    """workers = and backend = take effect: the new generation has its own
    threads and loops. An explicit io_uring the kernel refuses fails the
    reload as it fails a start."""
    services = {'echo': {'listen': 'tcp://127.0.0.1:0'}}
    d = ctx.daemon(services)
    reload(d, ctx.ini(services, ringd={'workers': '3'}))
    assert d.status['workers'] == '3', d.status
    echo_once(d.addr('tcp', 'echo'))
    # Privileges drop once: a changed user waits for a restart, the rest
    # of the file applies.
    reload(d, ctx.ini(services, ringd={'workers': '1', 'user': 'nobody'}))
    assert d.status['workers'] == '1', d.status
    assert ('ringd: a new user = takes effect at the next restart; privileges were '
            'set at start user=nobody started_with=none') in d.stderr(), d.stderr()
    if ctx.backend == 'io_uring':
        reload(d, ctx.ini(services, backend='epoll'))
        assert d.status['backend'] == 'epoll', d.status
        echo_once(d.addr('tcp', 'echo'))
    if ctx.backend == 'auto-no-uring':
        msgs = reload(d, ctx.ini(services, backend='io_uring'), expect_ok=False)
        assert re.search(r'^STATUS=reload failed: loop: io_uring unavailable \(.+\); '
                         r'backend = io_uring was asked for \(old configuration kept\)$',
                         msgs[-1], re.M), msgs
        echo_once(d.addr('tcp', 'echo'))
    d.stop()


# -- (e) quotes re-read -----------------------------------------------------------

def test_reload_rereads_quotes(ctx):
    quotes = os.path.join(ctx.tempdir(), 'quotes')
    write_quotes(quotes, 'old wisdom\n')
    d = ctx.daemon(ini=quotes_ini(ctx, quotes))
    assert qotd(d) == b'old wisdom\r\n'
    write_quotes(quotes, 'new wisdom\n%\nnewer wisdom\n')
    assert qotd(d) == b'old wisdom\r\n', 'quotes changed before any SIGHUP'
    reload(d)
    got = {qotd(d) for _ in range(6)}
    assert got == {b'new wisdom\r\n', b'newer wisdom\r\n'}, 'after the reload qotd served %r' % got
    d.stop()


# -- counters go on across reloads ------------------------------------------------

def scrape(d):
    with connect(d.addr('tcp', 'http'), timeout=5) as s:
        s.sendall(b'GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n')
        text = harness.recv_until_eof(s, deadline=time.monotonic() + 5).decode()
    out = {}
    for line in text.split('\r\n\r\n', 1)[1].splitlines():
        if line and not line.startswith('#'):
            name, _, value = line.rpartition(' ')
            out[name] = float(value)
    return out



def test_reload_switches_defer_accept(ctx):
    """defer_accept follows a reload on a listener the new generation
    takes over: the socket is the same, its option is the new file's."""
    port = free_port()

    def ini(defer):
        return ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:%d' % port,
                                 'defer_accept': defer},
                        'http': {'listen': 'tcp://127.0.0.1:0'}})

    def taken_at_once():
        """Whether a silent client is accepted within 0.6 s, as the
        service's active connections tell. The last call's client must
        be gone from the gauge first: closed a few milliseconds before,
        it can still count, and then read as this one taken at once."""
        key = 'ringd_connections_active{service="echo",transport="tcp"}'
        end = time.monotonic() + 2
        while scrape(d).get(key, 0) != 0:
            assert time.monotonic() < end, 'the previous client is still active'
            time.sleep(0.01)
        with connect(d.addr('tcp', 'echo'), timeout=2):
            end = time.monotonic() + 0.6
            while time.monotonic() < end:
                if scrape(d).get(key, 0) >= 1:
                    return True
                time.sleep(0.05)
            return False

    d = ctx.daemon(ini=ini("no"))
    assert taken_at_once()
    reload(d, ini('yes'))
    assert not taken_at_once()
    reload(d, ini('no'))
    assert taken_at_once()
    d.stop()

ECHO_ACCEPTED = 'ringd_connections_accepted_total{service="echo",transport="tcp"}'
ECHO_BYTES = 'ringd_received_bytes_total{service="echo",transport="tcp"}'
HTTP_200 = 'ringd_http_responses_total{service="http",code="200"}'


def test_reload_keeps_counters(ctx):
    """Totals carry over by service name: what the retiring generation
    counted so far at once, what it counts until its last connection ends
    once it is freed; a counter never goes down."""
    services = {'echo': {'listen': 'tcp://127.0.0.1:0'}, 'http': {'listen': 'tcp://127.0.0.1:0'}}
    d = ctx.daemon(services)
    for _ in range(5):
        echo_once(d.addr('tcp', 'echo'), b'12345')
    held = connect(d.addr('tcp', 'echo'), timeout=5)
    held.sendall(b'6')
    assert recv_exact(held, 1) == b'6'
    before = scrape(d)
    assert before[ECHO_ACCEPTED] == 6 and before[ECHO_BYTES] == 26, before
    reload(d, ctx.ini(services, ringd={'shutdown_timeout': '6s'}))
    mid = scrape(d)
    assert mid[ECHO_ACCEPTED] == 6 and mid[ECHO_BYTES] == 26, \
        'after the reload: accepted %r, bytes %r' % (mid[ECHO_ACCEPTED], mid[ECHO_BYTES])
    assert mid[HTTP_200] >= before[HTTP_200] + 1, (before[HTTP_200], mid[HTTP_200])
    echo_once(d.addr('tcp', 'echo'), b'abc')
    # Counted by the retiring generation, seen once it is freed.
    held.sendall(b'7890')
    assert recv_exact(held, 4) == b'7890'
    held.close()
    wait_released(d, 1)
    after = scrape(d)
    assert after[ECHO_ACCEPTED] == 7 and after[ECHO_BYTES] == 33, \
        'once the old configuration was freed: accepted %r, bytes %r' % (
            after[ECHO_ACCEPTED], after[ECHO_BYTES])
    d.stop()


def test_stop_while_a_generation_retires(ctx):
    """SIGTERM while a reload's previous generation still serves a
    connection: that connection drains like any other on a stop (echo: what
    was sent comes back, then FIN) instead of waiting for
    shutdown_timeout."""
    services = {'echo': {'listen': 'tcp://127.0.0.1:0'}}
    core = {'shutdown_timeout': '20s'}
    d = ctx.daemon(services, ringd=core)
    held = connect(d.addr('tcp', 'echo'), timeout=5)
    held.sendall(b'before')
    assert recv_exact(held, 6) == b'before'
    reload(d, ctx.ini(services, ringd=dict(core, log_level='notice')))
    held.sendall(b'during')
    assert recv_exact(held, 6) == b'during'
    assert released(d) == 0
    t0 = time.monotonic()
    d.stop()
    assert time.monotonic() - t0 < 5, 'the stop took %.1f s' % (time.monotonic() - t0)
    assert harness.recv_until_eof(held, deadline=time.monotonic() + 5) == b''
    held.close()


def test_readyz_stays_ready_across_a_reload(ctx):
    """A reload is not a drain: the retiring generation's /readyz still
    says 200 (on the keep-alive connection it still serves), and its
    answer ends that connection with Connection: close."""
    services = {'http': {'listen': 'tcp://127.0.0.1:0'}}
    d = ctx.daemon(services)
    s = connect(d.addr('tcp', 'http'), timeout=5)
    req = b'GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n'
    s.sendall(req)
    status, _, close, buf = Load._response(s, b'')
    assert status == 200 and not close
    reload(d, ctx.ini(services, ringd={'log_level': 'notice'}))
    s.sendall(req)
    status, body, close, _ = Load._response(s, buf)
    assert status == 200 and close, 'after the reload: %d %r close=%r' % (status, body, close)
    assert harness.recv_until_eof(s, deadline=time.monotonic() + 5) == b''
    s.close()
    d.stop()


def test_sighup_while_stopping_is_ignored(ctx):
    d = ctx.daemon(ringd={'drain_delay': '1s'})
    d.signal(signal.SIGTERM)
    time.sleep(0.2)
    d.signal(signal.SIGHUP)
    rc = d.wait()
    assert rc == 0, 'exit %s; stderr:\n%s' % (rc, d.stderr())
    assert 'SIGHUP ignored: the daemon is stopping' in d.stderr(), d.stderr()
    assert 'reloading' not in d.stderr()


def test_watchdog_pings_across_reloads(ctx):
    """The watchdog follows the running generation: reloads that change
    the worker count never leave a gap systemd would kill for, and no
    worker is reported stuck."""
    from test_supervise import WATCHDOG_USEC, pings, max_gap
    services = {'echo': {'listen': 'tcp://127.0.0.1:0'}}
    d = ctx.daemon(services, env={'WATCHDOG_USEC': str(WATCHDOG_USEC)})
    start = time.monotonic()
    stamped = []

    def listen_for(seconds):
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            m = d._read_notify(max(0.01, until - time.monotonic()))
            if m is not None:
                stamped.append((time.monotonic(), m))

    for workers in ('3', '1', '2', '4'):
        listen_for(0.4)
        first = len(d.messages)
        # A reload takes milliseconds: its datagrams are stamped after it.
        reload(d, ctx.ini(services, ringd={'workers': workers}))
        stamped += [(time.monotonic(), m) for m in d.messages[first:]]
    listen_for(1.2)
    end = time.monotonic()
    echo_once(d.addr('tcp', 'echo'))
    ts = pings(stamped)
    gap = max_gap(ts, start, end)
    assert gap < WATCHDOG_USEC / 1e6, '%.2f s without WATCHDOG=1: %r' % (gap, stamped)
    assert 'not making progress' not in d.stderr(), d.stderr()
    d.stop()


# -- (f) what the supervisor hears ------------------------------------------------

def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_reload_notify_protocol(ctx):
    d = ctx.daemon()
    t0 = monotonic_usec()
    msgs = reload(d, ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:0'}}))
    t1 = monotonic_usec()
    assert msgs[0].split('\n')[0] == 'RELOADING=1', 'first datagram: %r' % msgs
    m = re.search(r'^MONOTONIC_USEC=(\d+)$', msgs[0], re.M)
    assert m, 'RELOADING=1 without MONOTONIC_USEC=: %r' % msgs[0]
    assert t0 <= int(m.group(1)) <= t1, \
        'MONOTONIC_USEC=%s is not CLOCK_MONOTONIC now (%d..%d)' % (m.group(1), t0, t1)
    assert 'READY=1' in msgs[-1].split('\n') and 'READY=1' not in msgs[0], msgs
    assert re.search(r'^STATUS=running backend=\S+ workers=2 listen=echo:tcp://', msgs[-1], re.M), msgs
    msgs = reload(d, '[ringd\n', expect_ok=False)
    assert msgs[0].startswith('RELOADING=1\nMONOTONIC_USEC='), msgs
    assert re.search(r'^STATUS=reload failed: \S*ringd\.ini:1: .* \(old configuration kept\)$',
                     msgs[-1], re.M), msgs
    echo_once(d.addr('tcp', 'echo'))
    # The refreshed STATUS= goes on saying so, until a reload succeeds.
    assert wait_status(d, 'last_reload=failed'), d.messages
    reload(d, ctx.ini({'echo': {'listen': 'tcp://127.0.0.1:0'}}))
    echo_once(d.addr('tcp', 'echo'))
    assert wait_status(d, 'connections=0'), d.messages
    assert 'last_reload=failed' not in d.messages[-1], d.messages[-1]
    d.stop()


def wait_status(d, word, timeout=5.0):
    """The next refreshed STATUS=running line (within timeout) has word."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = d._read_notify(0.1)
        if m and m.startswith('STATUS=running ') and word in m:
            return True
    return False


if __name__ == '__main__':
    harness.main([
        test_reload_under_load_loses_nothing,
        test_reload_kept_listener_answers_at_once,
        test_reload_changed_port,
        test_reload_adds_and_removes_services,
        test_reload_one_socket_goes_to_one_listener,
        test_reload_keeps_unix_listener,
        test_reload_keeps_inherited_sockets,
        test_reload_broken_files_keep_serving,
        test_reload_worker_fails_to_start,
        test_reload_changes_workers_and_backend,
        test_reload_rereads_quotes,
        test_reload_keeps_counters,
        test_reload_switches_defer_accept,
        test_stop_while_a_generation_retires,
        test_readyz_stays_ready_across_a_reload,
        test_sighup_while_stopping_is_ignored,
        test_watchdog_pings_across_reloads,
        test_reload_notify_protocol,
    ])
