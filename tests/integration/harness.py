"""Integration harness: runs the real ringd on ephemeral ports.

A test script calls harness.main(cases) with a list of functions that each
take a Context. The command line (given by tests/integration/meson.build) is
    test_x.py --backend io_uring|epoll|auto-no-uring --ringd PATH --no-uring PATH [-k NAME]
The daemon is started with a temporary INI file and a NOTIFY_SOCKET that the
harness owns; readiness is the READY=1 datagram, never a sleep, and the bound
addresses come from its STATUS= line. Only the PID the harness started is
ever signalled. Every wait is bounded.
"""

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SKIP = 77
BACKENDS = ('io_uring', 'epoll', 'auto-no-uring')
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0


class Skip(Exception):
    pass


class DaemonError(AssertionError):
    pass


def parse_listen(value):
    """Parse 'svc:tcp://127.0.0.1:1,svc:unix:/p' into {svc: [Addr, ...]}."""
    out = {}
    if not value:
        return out
    for item in value.split(','):
        svc, _, url = item.partition(':')
        out.setdefault(svc, []).append(Addr.parse(url))
    return out


class Addr:
    def __init__(self, scheme, host=None, port=None, path=None, url=None):
        self.scheme, self.host, self.port, self.path = scheme, host, port, path
        self.url = url

    @classmethod
    def parse(cls, url):
        if url.startswith('unix:'):
            return cls('unix', path=url[len('unix:'):], url=url)
        m = re.fullmatch(r'(tcp|udp)://(\[[^\]]*\]|[^:]+):(\d+)', url)
        if not m:
            raise DaemonError('cannot parse listen address %r in STATUS' % url)
        host = m.group(2)
        if host.startswith('['):
            host = host[1:-1]
        return cls(m.group(1), host, int(m.group(3)), url=url)

    @property
    def family(self):
        if self.scheme == 'unix':
            return socket.AF_UNIX
        return socket.AF_INET6 if ':' in self.host else socket.AF_INET

    @property
    def sockaddr(self):
        if self.scheme == 'unix':
            return self.path
        return (self.host, self.port)

    def __repr__(self):
        return self.url


class Daemon:
    """One ringd process with its own temporary directory."""

    def __init__(self, ctx, ini, args=(), expect_ready=True, no_uring=None,
                 nofile=None, preexec=None, backend=None, env=None,
                 drops_privileges=False):
        self.ctx = ctx
        self.dir = tempfile.mkdtemp(prefix='ringd-it-')
        ctx.tmpdirs.append(self.dir)
        self.conf = os.path.join(self.dir, 'ringd.ini')
        with open(self.conf, 'w') as f:
            f.write(ini)
        self.args = list(args)
        self.expect_ready = expect_ready
        self.backend = backend or ctx.backend
        self.no_uring = (self.backend == 'auto-no-uring') if no_uring is None else no_uring
        self.nofile = nofile
        self.drops_privileges = drops_privileges
        self.preexec = preexec
        self.extra_env = dict(env or {})
        self.proc = None
        self.notify = None
        self.messages = []        # every notify datagram, decoded
        self.status = {}
        self.listen = {}
        self.stderr_path = os.path.join(self.dir, 'stderr')
        self.stdout_path = os.path.join(self.dir, 'stdout')
        self.returncode = None

    # -- start -------------------------------------------------------------
    def command(self):
        cmd = [self.ctx.ringd, '-c', self.conf] + self.args
        if self.no_uring:
            cmd = self.ctx.no_uring_prefix(self.no_uring) + cmd
        return cmd

    def _preexec(self):
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        if self.preexec:
            self.preexec()

    def start(self):
        path = os.path.join(self.dir, 'notify')
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(path)
        if self.drops_privileges:
            # Like systemd's /run/systemd/notify: reachable after setuid.
            os.chmod(self.dir, 0o711)
            os.chmod(path, 0o666)
        env = dict(os.environ)
        env['NOTIFY_SOCKET'] = path
        # What this process inherited goes first, so a case may set any
        # of these (WATCHDOG_USEC for the watchdog's tests) on purpose.
        for k in ('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'WATCHDOG_USEC',
                  'WATCHDOG_PID', 'JOURNAL_STREAM'):
            env.pop(k, None)
        for k, v in self.extra_env.items():
            # ASAN_OPTIONS and the like: append, so the later setting wins.
            env[k] = (env[k] + ':' + v) if k.endswith('_OPTIONS') and env.get(k) else v
        self.err_f = open(self.stderr_path, 'wb')
        self.out_f = open(self.stdout_path, 'wb')
        self.proc = self.spawn(self.command(), env)
        self.ctx.daemons.append(self)
        if self.expect_ready:
            self.wait_ready()
        return self

    def spawn(self, cmd, env):
        """Start the process; a subclass that must hand it descriptors
        (socket activation) returns any object with Popen's poll, wait,
        send_signal, kill, pid and returncode."""
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=self.out_f, stderr=self.err_f,
                                env=env, preexec_fn=self._preexec,
                                cwd=self.dir)

    def _read_notify(self, timeout):
        self.notify.settimeout(timeout)
        try:
            data = self.notify.recv(65536)
        except (socket.timeout, BlockingIOError):
            return None
        msg = data.decode('utf-8', 'replace')
        self.messages.append(msg)
        return msg

    def notify_fields(self):
        fields = {}
        for msg in self.messages:
            for line in msg.split('\n'):
                k, sep, v = line.partition('=')
                if sep:
                    fields.setdefault(k, []).append(v)
        return fields

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        ready = False
        while time.monotonic() < deadline:
            if ready and self.status:
                break
            msg = self._read_notify(0.05)
            if msg is None:
                if self.proc.poll() is not None:
                    raise DaemonError('ringd exited with %s before READY=1; stderr:\n%s'
                                      % (self.proc.returncode, self.stderr()))
                continue
            for line in msg.split('\n'):
                if line == 'READY=1':
                    ready = True
                elif line.startswith('STATUS=running'):
                    self.status = self._parse_status(line[len('STATUS='):])
        if not ready:
            raise DaemonError('no READY=1 within %.0f s; notify=%r stderr:\n%s'
                              % (timeout, self.messages, self.stderr()))
        if not self.status:
            raise DaemonError('READY=1 without a STATUS=running line: %r' % self.messages)
        self.listen = parse_listen(self.status.get('listen', ''))
        for addrs in self.listen.values():
            SERVICE_PORTS.update(a.port for a in addrs if a.port)
        self.check_backend()
        return self

    @staticmethod
    def _parse_status(text):
        out = {}
        for word in text.split()[1:]:
            k, _, v = word.partition('=')
            out[k] = v
        return out

    def expected_engine(self):
        return 'io_uring' if self.backend == 'io_uring' else 'epoll'

    def check_backend(self):
        """Every started daemon must have taken the engine its variant asks for."""
        want = self.expected_engine()
        got = self.status.get('backend')
        if got != want:
            raise DaemonError('STATUS says backend=%s, expected %s; notify=%r'
                              % (got, want, self.messages))
        err = self.stderr()
        if ('backend=' + want) not in err:
            raise DaemonError('no start-up line with backend=%s in stderr:\n%s' % (want, err))
        if self.backend == 'auto-no-uring':
            if not re.search(r'loop: io_uring unavailable \(.+\); using epoll', err):
                raise DaemonError('auto under no-uring did not log the fallback; stderr:\n'
                                  + err)

    # -- addresses ---------------------------------------------------------
    def addr(self, scheme='tcp', svc='echo', family=None):
        for a in self.listen.get(svc, []):
            if a.scheme == scheme and (family is None or a.family == family):
                return a
        raise DaemonError('no %s listener for %s in STATUS %r' % (scheme, svc, self.status))

    def addrs(self, svc='echo'):
        return list(self.listen.get(svc, []))

    # -- observation -------------------------------------------------------
    def stderr(self):
        try:
            with open(self.stderr_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    def stdout(self):
        try:
            with open(self.stdout_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''

    @property
    def pid(self):
        return self.proc.pid

    def target_pid(self):
        """The PID of ringd itself (no-uring execs, so it is the same PID)."""
        return self.proc.pid

    def rss_kib(self):
        with open('/proc/%d/status' % self.target_pid()) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
        raise DaemonError('no VmRSS')

    def cpu_seconds(self):
        with open('/proc/%d/stat' % self.target_pid()) as f:
            data = f.read()
        fields = data[data.rindex(')') + 2:].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf('SC_CLK_TCK')

    def alive(self):
        return self.proc.poll() is None

    # -- stop --------------------------------------------------------------
    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DaemonError('ringd did not exit within %.0f s; stderr:\n%s'
                              % (timeout, self.stderr()))
        self._drain_notify()
        return self.returncode

    def _drain_notify(self):
        if self.notify is None:
            return
        while self._read_notify(0) is not None:
            pass

    def stop(self, expect=0, timeout=STOP_TIMEOUT):
        """SIGTERM, wait (bounded), check the exit status, return stderr."""
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        err = self.stderr()
        if expect is not None and rc != expect:
            raise DaemonError('ringd exited %s after SIGTERM, expected %s; stderr:\n%s'
                              % (rc, expect, err))
        for bad in ('runtime error:', 'AddressSanitizer', 'LeakSanitizer'):
            if bad in err:
                raise DaemonError('sanitizer report in stderr:\n' + err)
        return err

    def run_to_exit(self, timeout=START_TIMEOUT):
        """For runs that must end by themselves (bad config, bind errors).
        A READY=1 means the daemon started instead: stop it, report that."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            msg = self._read_notify(0.05)
            if msg is not None and 'READY=1' in msg.split('\n'):
                self.signal(signal.SIGTERM)
                self.wait()
                raise DaemonError('ringd started (READY=1, exit %s) where it should have '
                                  'failed; stderr:\n%s' % (self.returncode, self.stderr()))
        return self.wait(max(0.1, deadline - time.monotonic()))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        self.kill()
        for f in ('err_f', 'out_f'):
            if hasattr(self, f):
                getattr(self, f).close()
        if self.notify is not None:
            self.notify.close()
            self.notify = None


class Context:
    def __init__(self, opts):
        self.backend = opts.backend
        self.ringd = os.path.abspath(opts.ringd)
        self.no_uring_exe = os.path.abspath(opts.no_uring)
        self.daemons = []
        self.tmpdirs = []
        self.namespaces = []

    def tempdir(self):
        t = tempfile.mkdtemp(prefix='ringd-it-')
        self.tmpdirs.append(t)
        return t

    def ini(self, services=None, ringd=None, backend=None):
        """An INI text: [ringd] for this variant, then the service sections."""
        backend = backend or self.backend
        core = {'backend': 'auto' if backend == 'auto-no-uring' else backend,
                'workers': '2', 'log_level': 'info', 'shutdown_timeout': '5s'}
        core.update(ringd or {})
        if services is None:
            services = {'echo': {'listen': 'tcp://127.0.0.1:0, udp://127.0.0.1:0'}}
        out = ['[ringd]'] + ['%s = %s' % kv for kv in core.items() if kv[1] is not None]
        for name, keys in services.items():
            out.append('')
            out.append('[%s]' % name)
            out += ['%s = %s' % kv for kv in keys.items()]
        return '\n'.join(out) + '\n'

    def daemon(self, services=None, ringd=None, start=True, **kw):
        d = Daemon(self, kw.pop('ini', None) or self.ini(services, ringd, kw.get('backend')), **kw)
        return d.start() if start else d

    def no_uring_prefix(self, no_uring):
        """no_uring is True (io_uring fails with EPERM, as under Docker) or
        an errno name the wrapper knows ('ENOSYS': a kernel without it)."""
        pre = [self.no_uring_exe]
        if isinstance(no_uring, str):
            pre += ['-e', no_uring]
        return pre

    def run(self, args, no_uring=None, timeout=START_TIMEOUT):
        """Run ringd to completion (for -t, -V, usage errors)."""
        cmd = [self.ringd] + list(args)
        if no_uring is None:
            no_uring = self.backend == 'auto-no-uring'
        if no_uring:
            cmd = self.no_uring_prefix(no_uring) + cmd
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, text=True)

    def netns(self):
        """A network namespace of this case's own (see NetNamespace)."""
        ns = NetNamespace()
        self.namespaces.append(ns)
        return ns

    def cleanup(self):
        for d in self.daemons:
            d.close()
        self.daemons = []
        # After the daemons: with its last process gone and its fd
        # closed, the kernel frees the namespace.
        for ns in self.namespaces:
            ns.close()
        self.namespaces = []
        for t in self.tmpdirs:
            shutil.rmtree(t, ignore_errors=True)
        self.tmpdirs = []


CLONE_NEWNET = 0x40000000


def _libc():
    import ctypes
    return ctypes, ctypes.CDLL(None, use_errno=True)


def _in_thread(fn, timeout=10.0):
    """fn() on a thread of its own, its result or its exception passed
    back. setns() and unshare() of a network namespace move only the
    calling thread, so the main thread never leaves its namespace."""
    import threading
    out = {}

    def run():
        try:
            out['result'] = fn()
        except BaseException as e:  # handed to the caller, raised there
            out['error'] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise DaemonError('namespace helper thread did not finish in %.0f s' % timeout)
    if 'error' in out:
        raise out['error']
    return out.get('result')


class NetNamespace:
    """A network namespace created for one test case. It has no name
    under /run/netns: one file descriptor holds it, so the kernel frees it
    once that descriptor is closed and the last process inside has exited,
    even when the test process is killed before its cleanup runs. Threads
    and child processes enter it with setns(); the main thread stays out.
    Skip when not root, or when the kernel refuses a new namespace."""

    def __init__(self):
        if os.geteuid() != 0:
            raise Skip('a network namespace of the test\'s own needs root')
        if shutil.which('ip') is None:
            raise Skip('no ip(8) to configure a network namespace')
        self.fd = None
        self.fd = _in_thread(self._create)

    @staticmethod
    def _create():
        ctypes, libc = _libc()
        if libc.unshare(CLONE_NEWNET) != 0:
            raise Skip('network namespaces unavailable: unshare(CLONE_NEWNET): %s'
                       % os.strerror(ctypes.get_errno()))
        return os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)

    def enter(self):
        """Move the calling thread (or a child before exec) into it."""
        ctypes, libc = _libc()
        if libc.setns(self.fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, 'setns(CLONE_NEWNET): ' + os.strerror(e))

    def run(self, args, timeout=10.0):
        """Run a command inside (ip addr add, ...); raise if it fails."""
        r = subprocess.run(args, preexec_fn=self.enter, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise DaemonError('in the test namespace, %s exited %d: %s'
                              % (' '.join(args), r.returncode, r.stderr.strip()))
        return r.stdout

    def socket(self, family, type_, src):
        """client_socket(), created inside: a socket stays in the namespace
        it was created in, whichever thread uses it later."""
        def make():
            self.enter()
            return client_socket(family, type_, src)
        return _in_thread(make)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# Under AddressSanitizer freed memory sits in a quarantine (256 MiB by
# default) and counts in RSS; memory-bound tests shrink it so that RSS
# measures what the daemon holds, not what it has freed.
MEMORY_TEST_ENV = {'ASAN_OPTIONS': 'quarantine_size_mb=4'}


def sanitized(ringd):
    """Whether ringd was built with AddressSanitizer, whose redzones and
    quarantine add to RSS what a memory bound must allow for."""
    with open(ringd, 'rb') as f:
        return b'__asan_init' in f.read()


def random_loopback():
    """A random 127.x.y.z source address, so parallel test runs that bind
    the same low source port do not collide."""
    import random
    return '127.%d.%d.%d' % (random.randint(1, 254), random.randint(0, 255),
                             random.randint(1, 254))


def io_uring_usable(ringd):
    """Ask ringd -V whether this machine lets it use io_uring."""
    r = subprocess.run([ringd, '-V'], capture_output=True, text=True, timeout=10)
    text = r.stdout + r.stderr
    m = re.search(r'^io_uring: (yes|no.*)$', text, re.M)
    if r.returncode != 0 or not m:
        raise DaemonError('ringd -V exited %d without an io_uring: line:\n%s'
                          % (r.returncode, text))
    return m.group(1) == 'yes', m.group(1)


# -- client helpers ---------------------------------------------------------

_PATTERN = None


def payload(n, seed=0):
    """n deterministic pseudo-random bytes (differs by seed)."""
    global _PATTERN
    if _PATTERN is None:
        import random
        rnd = random.Random(862)
        _PATTERN = rnd.randbytes(1 << 16)
    base = _PATTERN[seed % 4093:] + _PATTERN[:seed % 4093]
    reps = n // len(base) + 1
    return (base * reps)[:n]


def connect(addr, timeout=10.0):
    s = socket.socket(addr.family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr.sockaddr)
    return s


def connect_burst(addr, n):
    """n nonblocking TCP connects to addr started at once: {i: socket}."""
    import errno
    clients = {}
    for i in range(n):
        s = socket.socket(addr.family, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(addr.sockaddr)
        assert err in (0, errno.EINPROGRESS), errno.errorcode.get(err)
        clients[i] = s
    return clients


def recv_until_eof(s, limit=1 << 30, deadline=None):
    chunks = []
    total = 0
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError('timed out waiting for EOF after %d bytes' % total)
            s.settimeout(left)
        b = s.recv(1 << 16)
        if not b:
            break
        chunks.append(b)
        total += len(b)
        if total > limit:
            raise AssertionError('received more than %d bytes' % limit)
    return b''.join(chunks)


def recv_exact(s, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError('timed out after %d of %d bytes' % (len(buf), n))
        s.settimeout(left)
        b = s.recv(n - len(buf))
        if not b:
            raise AssertionError('EOF after %d of %d bytes' % (len(buf), n))
        buf += b
    return bytes(buf)


def echo_roundtrip(addr, data, timeout=20.0):
    """Send data from a thread, half-close, read until EOF; return what came back."""
    import threading
    s = connect(addr, timeout)
    err = []

    def writer():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        got = recv_until_eof(s, limit=len(data) + 1, deadline=time.monotonic() + timeout)
    finally:
        t.join(timeout)
        s.close()
    if err:
        raise AssertionError('send failed: %r' % err[0])
    return got


def assert_same(got, want, what='echo'):
    if got == want:
        return
    n = min(len(got), len(want))
    i = next((i for i in range(n) if got[i] != want[i]), n)
    raise AssertionError('%s differs: got %d bytes, want %d; first difference at offset %d'
                         % (what, len(got), len(want), i))


# Every port a daemon of this process listens on. The UDP guard drops
# datagrams whose source port is one of the daemon's own service ports, and
# with ephemeral ports on both sides a client can draw one by chance.
SERVICE_PORTS = set()


def client_socket(family, type_, src):
    """A socket bound to src (host, port); a port 0 becomes a free port that
    is none of the daemons' service ports."""
    for _ in range(50):
        s = socket.socket(family, type_)
        s.bind(src)
        if src[1] or s.getsockname()[1] not in SERVICE_PORTS:
            return s
        s.close()
    raise AssertionError('no free client port outside %r' % sorted(SERVICE_PORTS))


def udp_echo(addr, data, src=None, timeout=2.0):
    if src is None:
        src = ('::1' if addr.family == socket.AF_INET6 else '127.0.0.1', 0)
    s = client_socket(addr.family, socket.SOCK_DGRAM, src)
    try:
        s.settimeout(timeout)
        s.sendto(data, addr.sockaddr)
        got, peer = s.recvfrom(65536)
        return got, peer
    finally:
        s.close()


def udp_echo_lossy(addr, data, src=None, tries=3, timeout=0.7):
    """udp_echo for a datagram that may meet a full receive buffer in the
    kernel (during or just after a flood): sent again, up to `tries` times,
    from the same source address. Raises AssertionError when every try
    went unanswered."""
    for _ in range(tries):
        try:
            return udp_echo(addr, data, src, timeout)
        except socket.timeout:
            pass
    raise AssertionError('no reply to %r from %s in %d tries of %.1f s'
                         % (data[:32], src, tries, timeout))


# -- runner -----------------------------------------------------------------

def main(cases, needs_daemon=True):
    ap = argparse.ArgumentParser()
    ap.add_argument('--backend', choices=BACKENDS, required=True)
    ap.add_argument('--ringd', required=True)
    ap.add_argument('--no-uring', required=True)
    ap.add_argument('-k', dest='only', action='append', default=[])
    opts = ap.parse_args()
    name = os.path.basename(sys.argv[0])
    if not os.access(opts.ringd, os.X_OK):
        print('%s: %s is not built' % (name, opts.ringd))
        sys.exit(1)
    if opts.backend == 'io_uring':
        ok, why = io_uring_usable(opts.ringd)
        if not ok:
            print('SKIP: io_uring unavailable here (ringd -V: io_uring: %s)' % why)
            sys.exit(SKIP)
    passed = failed = skipped = 0
    for case in cases:
        cname = case.__name__
        if opts.only and not any(o in cname for o in opts.only):
            continue
        ctx = Context(opts)
        t0 = time.monotonic()
        try:
            case(ctx)
        except Skip as e:
            skipped += 1
            print('SKIP %s [%s]: %s' % (cname, opts.backend, e), flush=True)
        except Exception:
            failed += 1
            print('FAIL %s [%s] (%.2f s)' % (cname, opts.backend, time.monotonic() - t0))
            traceback.print_exc(file=sys.stdout)
            for d in ctx.daemons:
                print('--- ringd stderr (%s) ---\n%s---' % (' '.join(d.command()), d.stderr()))
            sys.stdout.flush()
        else:
            passed += 1
            print('ok   %s [%s] (%.2f s)' % (cname, opts.backend, time.monotonic() - t0),
                  flush=True)
        finally:
            ctx.cleanup()
    print('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
    if failed:
        sys.exit(1)
    if passed == 0 and skipped:
        sys.exit(SKIP)
    sys.exit(0)
