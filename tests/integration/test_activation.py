#!/usr/bin/env python3
"""Socket activation: a launcher in this script binds the sockets itself,
as systemd does for a .socket unit, and starts ringd with them as fds 3..
and LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES set. ringd must serve on them
without binding, log what it cannot use, and on a stop leave them as
systemd needs them for the next ringd (`systemctl restart`)."""

import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import Addr, connect, echo_roundtrip, payload, recv_exact, udp_echo

SO_GET_FILTER = 26  # = SO_ATTACH_FILTER; reads back the filter's length


class ForkedProc:
    """A child started with os.fork and os.execve, so that it gets the
    launcher's sockets as fds 3.. and its own pid in LISTEN_PID (which
    subprocess cannot set: the pid is known only after the fork). Offers
    what harness.Daemon uses of a Popen."""

    def __init__(self, cmd, env, fds, stdout, stderr, cwd):
        self.args = cmd
        self.returncode = None
        self.pid = os.fork()
        if self.pid == 0:
            self._child(cmd, env, fds, stdout, stderr, cwd)

    @staticmethod
    def _child(cmd, env, fds, stdout, stderr, cwd):
        try:
            os.chdir(cwd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            # Out of the way first: a source may sit where another goes.
            high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 100) for f in fds]
            for i, f in enumerate(high):
                os.dup2(f, 3 + i)  # inheritable, unlike the copies
            env = dict(env, LISTEN_PID=str(os.getpid()))
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig):
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)


class Activated(harness.Daemon):
    """ringd started with socks as its inherited fds, in order. names is
    LISTEN_FDNAMES (None: not set)."""

    def __init__(self, ctx, ini, socks, names=None, **kw):
        super().__init__(ctx, ini, **kw)
        self.socks = list(socks)
        self.names = names

    def spawn(self, cmd, env):
        env = dict(env, LISTEN_FDS=str(len(self.socks)))
        if self.names is not None:
            env['LISTEN_FDNAMES'] = ':'.join(self.names)
        return ForkedProc(cmd, env, [s.fileno() for s in self.socks],
                          self.out_f.fileno(), self.err_f.fileno(), self.dir)


class Launcher:
    """The sockets a .socket unit would hold: bound and listening here,
    in the test process, for as long as the case runs."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.socks = []

    def tcp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', 0))
        s.listen(64)
        self.socks.append(s)
        return s, 'tcp://127.0.0.1:%d' % s.getsockname()[1]

    def udp(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('127.0.0.1', 0))
        self.socks.append(s)
        return s, 'udp://127.0.0.1:%d' % s.getsockname()[1]

    def unix(self):
        path = os.path.join(self.ctx.tempdir(), 'echo.sock')
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(64)
        self.socks.append(s)
        return s, 'unix:' + path

    def start(self, ini, socks, names=None, expect_ready=True):
        d = Activated(self.ctx, ini, socks, names, expect_ready=expect_ready)
        return d.start()

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def socket_inodes(pid):
    """Socket inodes among the open fds of pid."""
    out = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except FileNotFoundError:
            continue
        if link.startswith('socket:['):
            out.add(int(link[len('socket:['):-1]))
    return out


def inode(s):
    return os.fstat(s.fileno()).st_ino


def filter_blocks(s):
    """Instructions of the socket filter attached to s (0: none)."""
    return len(s.getsockopt(socket.SOL_SOCKET, SO_GET_FILTER, 512))


def echo_ini(ctx, listen, extra=None, ringd=None):
    services = {'echo': {'listen': listen}}
    services.update(extra or {})
    return ctx.ini(services, ringd)


def test_serves_inherited_sockets(ctx):
    """TCP, UDP and unix sockets passed in are served, with no bind of
    ringd's own: the addresses are taken (a bind would fail), the fds
    ringd holds are the launcher's sockets, and the listener it binds
    itself (daytime on port 0) sits beside them."""
    la = Launcher(ctx)
    t, turl = la.tcp()
    u, uurl = la.udp()
    x, xurl = la.unix()
    ini = echo_ini(ctx, '%s, %s, %s' % (turl, uurl, xurl),
                   {'daytime': {'plugin': 'time', 'format': 'daytime',
                                'listen': 'tcp://127.0.0.1:0'}})
    d = la.start(ini, [t, u, x], ['echo', 'ringd.socket', 'echo'])
    assert [a.url for a in d.addrs('echo')] == [turl, uurl, xurl], d.status
    held = socket_inodes(d.pid)
    for s in (t, u, x):
        assert inode(s) in held, 'ringd does not hold the launcher\'s %r' % s
    data = payload(200000, seed=8)
    assert echo_roundtrip(Addr.parse(turl), data) == data
    assert echo_roundtrip(Addr.parse(xurl), data) == data
    assert udp_echo(Addr.parse(uurl), b'dgram')[0] == b'dgram'
    c = connect(d.addr('tcp', svc='daytime'))
    assert c.recv(100).endswith(b'\r\n')
    c.close()
    err = d.stderr()
    assert 'activate: inherited sockets count=3' in err, err
    # reuseport = yes by default and workers = 2: the one socket is shared.
    assert re.search(r'^notice: listen: inherited, one socket shared by all workers .* svc=echo '
                     r'addr=%s workers=2$' % re.escape(turl), err, re.M), err
    assert 'error:' not in err, err
    path = xurl[len('unix:'):]
    d.stop()
    # Not ours to remove: the launcher's socket file stays, and answers.
    assert os.path.exists(path)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(2)
    c.connect(path)
    c.close()


def test_same_ini_without_activation(ctx):
    """The INI of an activated ringd starts as it is with no sockets
    passed: ringd binds the same addresses itself."""
    la = Launcher(ctx)
    t, turl = la.tcp()
    u, uurl = la.udp()
    ini = echo_ini(ctx, '%s, %s' % (turl, uurl))
    d = la.start(ini, [t, u], ['echo', 'echo'])
    assert echo_roundtrip(Addr.parse(turl), b'one') == b'one'
    d.stop()
    la.close()
    d = harness.Daemon(ctx, ini).start()
    assert [a.url for a in d.addrs('echo')] == [turl, uurl]
    assert 'inherited' not in d.stderr(), d.stderr()
    assert echo_roundtrip(Addr.parse(turl), b'two') == b'two'
    assert udp_echo(Addr.parse(uurl), b'three')[0] == b'three'
    d.stop()


def test_unclaimed_socket_is_logged_and_closed(ctx):
    """An fd no listen = entry asks for: one error line naming it, the
    daemon runs on, and it holds no copy of that socket."""
    la = Launcher(ctx)
    t, turl = la.tcp()
    extra, xurl = la.udp()
    d = la.start(echo_ini(ctx, turl), [t, extra], ['ringd', 'extra'])
    err = d.stderr()
    want = ('activate: inherited socket matches no listen = entry; our copy '
            'is closed fd=4 name=extra addr=%s' % xurl)
    assert want in err, err
    assert err.count('matches no listen = entry') == 1, err
    assert inode(extra) not in socket_inodes(d.pid)
    assert inode(t) in socket_inodes(d.pid)
    assert echo_roundtrip(Addr.parse(turl), b'still') == b'still'
    d.stop()


def test_name_reserves_socket_for_its_service(ctx):
    """A socket named for qotd is qotd's even at echo's address: echo
    does not take it, it is logged, and echo's own bind then finds the
    address taken, so the start fails and says both."""
    la = Launcher(ctx)
    t, turl = la.tcp()
    ini = echo_ini(ctx, turl, {'discard': {'listen': 'tcp://127.0.0.1:0'}})
    d = la.start(ini, [t], ['qotd'], expect_ready=False)
    rc = d.run_to_exit()
    err = d.stderr()
    assert rc == 1, 'exit %s; stderr:\n%s' % (rc, err)
    assert 'fd=3 name=qotd addr=%s' % turl in err, err
    assert 'listen: bind failed svc=echo addr=%s error="Address already in use"' % turl in err, err
    # Still the launcher's, still listening: the failed start changed nothing.
    c = connect(Addr.parse(turl), timeout=2)
    c.close()


def test_bad_environment_is_a_start_error(ctx):
    """LISTEN_FDNAMES with the wrong number of names: exit 1, saying so."""
    la = Launcher(ctx)
    t, turl = la.tcp()
    d = la.start(echo_ini(ctx, turl), [t], ['echo', 'qotd'], expect_ready=False)
    rc = d.run_to_exit()
    assert rc == 1, d.stderr()
    assert 'activate: LISTEN_FDNAMES has 2 names for LISTEN_FDS=1' in d.stderr()


def test_restart_serves_what_queued_meanwhile(ctx):
    """systemctl restart: ringd stops; the sockets stay with the launcher,
    with no SYN filter attached and not shut down, so a client connecting
    while no ringd runs completes its handshake and waits in the queue,
    a datagram waits in its socket, and the next ringd started on the
    same fds serves both."""
    la = Launcher(ctx)
    t, turl = la.tcp()
    u, uurl = la.udp()
    ini = echo_ini(ctx, '%s, %s' % (turl, uurl))
    d = la.start(ini, [t, u], ['echo', 'echo'])
    assert echo_roundtrip(Addr.parse(turl), b'before') == b'before'
    d.stop()
    assert filter_blocks(t) == 0, 'ringd left a socket filter on the TCP listener'
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(2)
    c.connect(t.getsockname())  # a dropped SYN would time out here
    c.sendall(b'queued')
    q = harness.client_socket(socket.AF_INET, socket.SOCK_DGRAM, ('127.0.0.1', 0))
    q.sendto(b'waiting', u.getsockname())
    d2 = la.start(ini, [t, u], ['echo', 'echo'])
    assert recv_exact(c, 6) == b'queued'
    c.close()
    q.settimeout(5)
    assert q.recvfrom(100)[0] == b'waiting'
    q.close()
    assert echo_roundtrip(Addr.parse(turl), b'after') == b'after'
    d2.stop()
    assert filter_blocks(t) == 0
    c = connect(Addr.parse(turl), timeout=2)
    c.close()


def test_stop_serves_what_was_queued(ctx):
    """A client waiting in the inherited socket's queue when the stop
    begins (here behind max_connections) is served by the ringd that
    stops, as on a socket of its own, not left to the next one."""
    la = Launcher(ctx)
    t, turl = la.tcp()
    ini = echo_ini(ctx, turl, ringd={'workers': '1', 'max_connections': '1'})
    d = la.start(ini, [t], ['echo'])
    first = connect(Addr.parse(turl))
    first.sendall(b'1')
    assert recv_exact(first, 1) == b'1'
    waiting = connect(Addr.parse(turl))
    waiting.sendall(b'queued')
    time.sleep(0.2)  # nothing to wait for: it must not be served yet
    waiting.setblocking(False)
    try:
        early = waiting.recv(10)
    except BlockingIOError:
        early = None
    assert early is None, 'served past max_connections = 1: %r' % early
    waiting.setblocking(True)
    d.signal(signal.SIGTERM)
    waiting.settimeout(5)
    assert recv_exact(waiting, 6) == b'queued'
    assert harness.recv_until_eof(waiting, deadline=time.monotonic() + 5) == b''
    assert harness.recv_until_eof(first, deadline=time.monotonic() + 5) == b''
    waiting.close()
    first.close()
    assert d.wait() == 0, d.stderr()
    assert filter_blocks(t) == 0
    c = connect(Addr.parse(turl), timeout=2)
    c.close()


class ViaSystemd(harness.Daemon):
    """ringd under systemd's own socket-activate tool, which binds addr,
    waits for a first client and execs ringd with the socket as fd 3."""

    def __init__(self, ctx, ini, tool, addr, fdname):
        super().__init__(ctx, ini, expect_ready=False)
        self.pre = [tool, '-l', addr, '--fdname=' + fdname, '-E',
                    'NOTIFY_SOCKET=' + os.path.join(self.dir, 'notify')]

    def command(self):
        return self.pre + super().command()


def test_systemd_socket_activate(ctx):
    """The protocol as systemd itself speaks it (systemd-socket-activate,
    package systemd), not only as this script's launcher does."""
    tool = shutil.which('systemd-socket-activate')
    if tool is None:
        raise harness.Skip('no systemd-socket-activate here')
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    addr = '127.0.0.1:%d' % probe.getsockname()[1]
    probe.close()
    d = ViaSystemd(ctx, echo_ini(ctx, 'tcp://' + addr), tool, addr, 'echo')
    d.start()
    deadline = time.monotonic() + harness.START_TIMEOUT
    while True:
        try:
            c = connect(Addr.parse('tcp://' + addr), timeout=5)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline or d.proc.poll() is not None:
                raise AssertionError('socket-activate never listened on %s; '
                                     'stderr:\n%s' % (addr, d.stderr()))
            time.sleep(0.05)
    c.sendall(b'first client')
    d.wait_ready()
    assert recv_exact(c, 12) == b'first client'
    c.close()
    assert re.search(r'listen: inherited.* svc=echo addr=tcp://%s ' % re.escape(addr),
                     d.stderr()), d.stderr()
    d.stop()


if __name__ == '__main__':
    harness.main([
        test_serves_inherited_sockets,
        test_same_ini_without_activation,
        test_unclaimed_socket_is_logged_and_closed,
        test_name_reserves_socket_for_its_service,
        test_bad_environment_is_a_start_error,
        test_restart_serves_what_queued_meanwhile,
        test_stop_serves_what_was_queued,
        test_systemd_socket_activate,
    ])
