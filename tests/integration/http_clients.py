"""Real HTTP clients for the http plugin's integration tests.

One function (or, for a server-shaped client, one context manager) per
client that nobody here wrote. Each runs the client against 127.0.0.1:PORT,
bounded in time, and returns a Result whose fields are parsed numbers,
codes and verdicts for a test to assert on; `.raw` keeps the client's own
output for the assertion message. A client that is not installed raises
harness.Skip. Every external process is started by PID, bounded by a
timeout, and killed by that PID on the way out; nothing here listens on
or connects to anything but loopback (the HAProxy stats socket is a unix
socket in a temporary directory). The proxy variables are removed from
every client's environment.

Validated against nginx-light 1.22 by check_http_clients.py (not part of
meson test). Versions in Debian 12 and what each client is like:

- curl 7.88.1: `-w '%{json}'` and `%{header_json}` give one JSON object per
  transfer; with two URLs in one invocation, num_connects is 1 then 0 and
  local_port is the same when one connection served both. `--http1.0`
  sends HTTP/1.0 and no Connection header; curl then expects the server
  to close unless it answers `Connection: keep-alive`.
- wget 1.21.3: `-S` prints the response head on stderr, indented by two
  spaces; exit 8 for any 4xx/5xx (the body is dropped unless
  --content-on-error, which we pass), 4 for a refused connection.
- ab 2.3 (apache2-utils 2.4.71): speaks HTTP/1.0 even with -k; it sends
  `Connection: Keep-Alive` and reuses the connection only when the
  response carries a Content-Length and the string "keep-alive" in its
  head, so an HTTP/1.0 keep-alive answer must say `Connection: keep-alive`.
  "Non-2xx responses:" is printed only when non-zero; "Keep-Alive
  requests:" counts the responses that allowed reuse.
- wrk 4.1.0: "Socket errors:" and "Non-2xx or 3xx responses:" appear only
  when non-zero. A run of -d1s takes about 1.1 s.
- h2load 1.52.0 (nghttp2-client): with --h1 and -m 8 it pipelines up to 8
  requests per connection; its summary gives succeeded/failed/errored and
  2xx..5xx counts. It sends `user-agent` in lower case.
- check_http 2.3.3 (monitoring-plugins-basic): HTTP/1.1, `Connection:
  close`; exit 0 OK, 1 WARNING (4xx), 2 CRITICAL (5xx, refused), 3 UNKNOWN.
- htpdate 1.3.7: query only is the default and `-q` says so explicitly; it
  never needs -s/-a/-x to report. It sends `HEAD <path> HTTP/1.1` with
  `Host: 127.0.0.1` (no port) and `Connection: keep-alive`, five times on
  ONE connection (one to measure the round trip, then -p 4 = four polls
  timed to bisect the second boundary), reading each answer with a single
  recv(): a server that closes after the first HEAD makes htpdate print
  "error from ..." and "No server suitable for synchronization found"
  (exit 1). It copies 24 characters at offset 11 of "Date: " (the
  IMF-fixdate without the weekday). A run takes about 1.2 s. We pass -d for
  the "offset: %.6f" line and the per-poll lines, -n to ignore proxies,
  -4. Offsets over a year are refused unless -t; we keep the check.
- HAProxy 2.6.12: `option httpchk GET /readyz` sends `GET /readyz
  HTTP/1.0\r\n\r\n` and the bare `option httpchk` sends `OPTIONS /
  HTTP/1.0\r\n\r\n`: HTTP/1.0 with no Host header and no User-Agent. A
  server starts UP before any check has run, so wait_state() also waits for
  a completed check (check_status not empty or INI). `-db` keeps it in the
  foreground as one process (no master), so its PID is the one we kill.
  Status may read "UP 1/2" or "DOWN 1/1" while a server changes state;
  `state` is the first word, `transition` the fraction. The CSV column
  last_chk holds the reason phrase of a failed check ("Service Temporarily
  Unavailable"), not a time. With inter 100ms, fall 2, DOWN came 0.15 s
  after /readyz turned 503.
- blackbox_exporter 0.23.0: the module below is http_2xx with
  preferred_ip_protocol ip4; probe_success and probe_http_status_code come
  back in the text format; with &debug=true the probe log is returned.
- promtool 2.42.0: `promtool check metrics` reads stdin and prints its
  complaints on stderr: exit 0 clean, 3 for lint problems (no HELP, a
  counter without _total), 1 for a parse error ("error while linting:
  text format parsing error in line N: ...").
- Prometheus 2.42.0: with scrape_interval 1s the first `up` sample arrived
  5.3-5.9 s after start on this machine (start-up, then the first scrape
  at the target's offset within the interval, then the query sees it);
  wait_up() allows 30 s. /api/v1/targets gives health and lastError when
  up is 0 (a refused connection still yields a sample: up 0).
- Python http.client: one HTTPConnection reuses its socket; the local port
  of each request tells whether it reconnected.
"""

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse

import harness
from harness import Skip

HOST = '127.0.0.1'
CLIENT_TIMEOUT = 20.0      # one client run, end to end
START_TIMEOUT = 15.0       # a server-shaped client up and answering
STOP_TIMEOUT = 5.0
CHECK_HTTP = '/usr/lib/nagios/plugins/check_http'

PROXY_VARS = ('http_proxy', 'https_proxy', 'all_proxy', 'no_proxy', 'ftp_proxy')


class ClientError(AssertionError):
    pass


class Result:
    """The parsed outcome of one client run. Fields are set by the wrapper;
    `raw` (the client's output) and `argv` are kept for messages and left
    out of repr()."""

    QUIET = ('raw', 'argv', 'metrics', 'responses', 'transfers', 'fields')

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        shown = []
        for k, v in self.__dict__.items():
            if k in self.QUIET:
                continue
            if isinstance(v, bytes) and len(v) > 48:
                v = v[:48] + b'...'
            shown.append('%s=%r' % (k, v))
        return 'Result(%s)' % ', '.join(shown)

    def __getitem__(self, k):
        return self.__dict__[k]


def client_env():
    """os.environ without proxies, in the C locale (stable output)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    env['LC_ALL'] = 'C'
    return env


def need(exe):
    path = exe if os.path.isabs(exe) else shutil.which(exe)
    if not path or not os.access(path, os.X_OK):
        raise Skip('%s is not installed' % exe)
    return path


def free_port():
    """A loopback TCP port that was free a moment ago and is none of the
    daemons' service ports (harness.client_socket). A server started on it
    may still lose a race: Server.start() retries with a new one."""
    s = harness.client_socket(socket.AF_INET, socket.SOCK_STREAM, (HOST, 0))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


def url(port, path='/'):
    return 'http://%s:%d%s' % (HOST, port, path)


def run(argv, timeout=CLIENT_TIMEOUT, input=None):
    """Run one client to completion; on timeout subprocess kills it by PID."""
    need(argv[0])
    try:
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                              env=client_env(), stdin=None if input is not None
                              else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise ClientError('%s did not finish within %.0f s; output so far: %r'
                          % (' '.join(argv), timeout, (e.stdout or b'')[-2000:]))


def _text(b):
    return (b or b'').decode('utf-8', 'replace')


def _int(pattern, text, default=None):
    m = re.search(pattern, text, re.M)
    return int(m.group(1)) if m else default


def _float(pattern, text, default=None):
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else default


# -- HTTP head parsing ------------------------------------------------------

def parse_head(text):
    """'HTTP/1.1 200 OK\\r\\nA: b\\r\\n...' -> (version, status, reason, [(name, value)])."""
    lines = text.replace('\r\n', '\n').split('\n')
    m = re.fullmatch(r'(HTTP/\d(?:\.\d)?) (\d{3})(?: (.*))?', lines[0].strip())
    if not m:
        raise ClientError('not an HTTP status line: %r' % lines[0])
    fields = []
    for line in lines[1:]:
        if not line.strip():
            continue
        name, sep, value = line.partition(':')
        if not sep:
            raise ClientError('not a header field: %r' % line)
        fields.append((name.strip(), value.strip()))
    return m.group(1), int(m.group(2)), m.group(3) or '', fields


def header_dict(fields):
    """[(name, value)] -> {lowercased name: [values]}; a test asserts that a
    header appears exactly once with len(h['content-type']) == 1."""
    out = {}
    for name, value in fields:
        out.setdefault(name.lower(), []).append(value)
    return out


# -- curl -------------------------------------------------------------------

def curl(port, paths=('/healthz',), args=(), timeout=CLIENT_TIMEOUT):
    """One curl invocation over one or more paths. Returns Result(exit,
    transfers=[Result(code, http_version, reason, headers, body,
    num_connects, local_port, errormsg, method)]); curl reuses the
    connection across the URLs of one invocation when it can."""
    d = tempfile.mkdtemp(prefix='ringd-curl-')
    try:
        argv = [need('curl'), '-s', '--noproxy', '*', '--max-time', str(timeout / 2),
                '-D', os.path.join(d, 'heads'), '-w', '%{json}\\n%{header_json}\\n']
        argv += list(args)
        for i, p in enumerate(paths):
            argv += ['-o', os.path.join(d, 'body%d' % i), url(port, p)]
        r = run(argv, timeout)
        out = _text(r.stdout)
        dec = json.JSONDecoder()
        objs, pos = [], 0
        while True:
            while pos < len(out) and out[pos].isspace():
                pos += 1
            if pos >= len(out):
                break
            obj, pos = dec.raw_decode(out, pos)
            objs.append(obj)
        try:
            with open(os.path.join(d, 'heads'), 'rb') as f:
                heads = _text(f.read())
        except FileNotFoundError:
            heads = ''
        # Status lines of the header dump, in transfer order (1xx skipped).
        status_lines = [l for l in heads.replace('\r\n', '\n').split('\n')
                        if re.match(r'HTTP/\S+ [2-9]\d\d', l)]
        transfers = []
        for i in range(0, len(objs) - 1, 2):
            info, hdrs = objs[i], objs[i + 1]
            n = info.get('urlnum', i // 2)
            try:
                with open(os.path.join(d, 'body%d' % n), 'rb') as f:
                    body = f.read()
            except FileNotFoundError:
                body = b''
            sl = status_lines[len(transfers)] if len(transfers) < len(status_lines) else ''
            if info.get('method') == 'HEAD':
                body = b''      # -I writes the head to -o; curl reads no body
            transfers.append(Result(
                url=info.get('url'), exit=info.get('exitcode'), code=info.get('http_code'),
                http_version=info.get('http_version'), method=info.get('method'),
                reason=sl.split(' ', 2)[2].strip() if sl.count(' ') >= 2 else '',
                headers=hdrs, num_connects=info.get('num_connects'),
                local_port=info.get('local_port'), errormsg=info.get('errormsg'),
                body=body))
        return Result(exit=r.returncode, transfers=transfers,
                      argv=argv, raw=out + _text(r.stderr))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _one(res):
    if len(res.transfers) != 1:
        raise ClientError('curl: expected one transfer, got %r (exit %d)\n%s'
                          % (res.transfers, res.exit, res.raw))
    t = res.transfers[0]
    t.argv, t.raw = res.argv, res.raw
    return t


def curl_get(port, path='/healthz', args=(), timeout=CLIENT_TIMEOUT):
    """GET: Result(exit, code, http_version, reason, headers, body, ...)."""
    return _one(curl(port, (path,), args, timeout))


def curl_head(port, path='/healthz', timeout=CLIENT_TIMEOUT):
    """curl -I: the same fields; body is b'' (curl reads none for HEAD, so
    whether a server wrongly sends one shows only on the raw socket)."""
    return _one(curl(port, (path,), ['-I'], timeout))


def curl_http10(port, path='/healthz', timeout=CLIENT_TIMEOUT):
    """curl --http1.0: the request is HTTP/1.0; http_version is the
    version of the server's status line."""
    return _one(curl(port, (path,), ['--http1.0'], timeout))


def curl_reuse(port, paths=('/healthz', '/readyz'), args=(), timeout=CLIENT_TIMEOUT):
    """Two (or more) URLs in one curl: Result(exit, codes, connects (per
    transfer num_connects), local_ports, reused: True when one connection
    served them all, transfers)."""
    res = curl(port, paths, args, timeout)
    connects = [t.num_connects for t in res.transfers]
    ports = [t.local_port for t in res.transfers]
    reused = (len(res.transfers) == len(paths) and sum(connects) == 1
              and len(set(ports)) == 1)
    return Result(exit=res.exit, codes=[t.code for t in res.transfers], connects=connects,
                  local_ports=ports, reused=reused, transfers=res.transfers,
                  argv=res.argv, raw=res.raw)


# -- wget -------------------------------------------------------------------

def wget(port, path='/healthz', timeout=CLIENT_TIMEOUT):
    """wget -S -O-: Result(exit, status, version, reason, headers, body)."""
    t = max(1, int(timeout / 2))
    argv = [need('wget'), '-S', '-O-', '--no-proxy', '--content-on-error',
            '-t', '1', '-T', str(t), url(port, path)]
    r = run(argv, timeout)
    err = _text(r.stderr)
    # The last response head: lines indented by two spaces after the
    # status line (after a redirect, an earlier head comes first).
    heads, cur = [], None
    for line in err.split('\n'):
        if re.match(r'  HTTP/\d', line):
            cur = [line.strip()]
            heads.append(cur)
        elif cur is not None and line.startswith('  ') and ':' in line:
            cur.append(line.strip())
        else:
            cur = None
    if heads:
        version, status, reason, fields = parse_head('\n'.join(heads[-1]))
    else:
        version, status, reason, fields = None, None, None, []
    return Result(exit=r.returncode, status=status, version=version, reason=reason,
                  headers=header_dict(fields), body=r.stdout, argv=argv, raw=err)


# -- load generators --------------------------------------------------------

def ab(port, path='/healthz', n=1000, c=10, keepalive=True, timeout=CLIENT_TIMEOUT):
    """ab [-k] -n N -c C: Result(exit, complete, failed, failed_by (connect,
    receive, length, exceptions), non_2xx, keepalive_requests, rps)."""
    argv = [need('ab'), '-q', '-n', str(n), '-c', str(c), '-s', str(max(1, int(timeout / 2)))]
    if keepalive:
        argv.append('-k')
    argv.append(url(port, path))
    r = run(argv, timeout)
    out = _text(r.stdout) + _text(r.stderr)
    by = {}
    m = re.search(r'^\s+\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)',
                  out, re.M)
    if m:
        by = dict(zip(('connect', 'receive', 'length', 'exceptions'), map(int, m.groups())))
    return Result(exit=r.returncode,
                  complete=_int(r'^Complete requests:\s+(\d+)', out),
                  failed=_int(r'^Failed requests:\s+(\d+)', out),
                  failed_by=by,
                  non_2xx=_int(r'^Non-2xx responses:\s+(\d+)', out, 0),
                  keepalive_requests=_int(r'^Keep-Alive requests:\s+(\d+)', out, 0),
                  rps=_float(r'^Requests per second:\s+([\d.]+)', out),
                  argv=argv, raw=out)


def _wrk_time(v, unit):
    return round(float(v) * {'us': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0}[unit], 9)


def wrk(port, path='/healthz', threads=1, conns=10, duration='1s', timeout=CLIENT_TIMEOUT):
    """wrk -t1 -c10 -d1s --latency: Result(exit, requests, seconds, rps,
    socket_errors {connect, read, write, timeout}, non_2xx_3xx,
    latency {50, 75, 90, 99: seconds})."""
    argv = [need('wrk'), '-t', str(threads), '-c', str(conns), '-d', duration,
            '--timeout', '2s', '--latency', url(port, path)]
    r = run(argv, timeout)
    out = _text(r.stdout) + _text(r.stderr)
    m = re.search(r'^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)', out, re.M)
    errors = {'connect': 0, 'read': 0, 'write': 0, 'timeout': 0}
    e = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    if e:
        errors = dict(zip(('connect', 'read', 'write', 'timeout'), map(int, e.groups())))
    latency = {}
    for pct, v, unit in re.findall(r'^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$', out, re.M):
        latency[int(pct)] = _wrk_time(v, unit)
    return Result(exit=r.returncode,
                  requests=int(m.group(1)) if m else None,
                  seconds=_wrk_time(m.group(2), m.group(3)) if m else None,
                  rps=_float(r'^Requests/sec:\s+([\d.]+)', out),
                  socket_errors=errors,
                  non_2xx_3xx=_int(r'Non-2xx or 3xx responses: (\d+)', out, 0),
                  latency=latency, argv=argv, raw=out)


def h2load(port, path='/healthz', n=1000, c=10, m=8, timeout=CLIENT_TIMEOUT):
    """h2load --h1 -m M -n N -c C (HTTP/1.1 pipelining): Result(exit,
    protocol, total, started, done, succeeded, failed, errored, timeout,
    status {'2xx': n, '3xx', '4xx', '5xx'})."""
    argv = [need('h2load'), '--h1', '-m', str(m), '-n', str(n), '-c', str(c),
            url(port, path)]
    r = run(argv, timeout)
    out = _text(r.stdout) + _text(r.stderr)
    req = re.search(r'^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, '
                    r'(\d+) failed, (\d+) errored, (\d+) timeout', out, re.M)
    keys = ('total', 'started', 'done', 'succeeded', 'failed', 'errored', 'timeout')
    counts = dict(zip(keys, map(int, req.groups()))) if req else dict.fromkeys(keys)
    st = re.search(r'^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx', out, re.M)
    status = dict(zip(('2xx', '3xx', '4xx', '5xx'), map(int, st.groups()))) if st else {}
    proto = re.search(r'^Application protocol: (\S+)', out, re.M)
    return Result(exit=r.returncode, protocol=proto.group(1) if proto else None,
                  status=status, argv=argv, raw=out, **counts)


# -- monitoring -------------------------------------------------------------

NAGIOS_STATES = {0: 'OK', 1: 'WARNING', 2: 'CRITICAL', 3: 'UNKNOWN'}


def check_http(port, path='/healthz', args=(), timeout=CLIENT_TIMEOUT):
    """monitoring-plugins check_http: Result(exit, state, first_line,
    status (the HTTP code it saw, or None), perfdata {name: value})."""
    argv = [need(CHECK_HTTP), '-H', HOST, '-p', str(port), '-u', path,
            '-t', str(max(1, int(timeout / 2)))] + list(args)
    r = run(argv, timeout)
    out = _text(r.stdout)
    first = out.split('\n', 1)[0]
    text, _, perf = first.partition('|')
    m = re.search(r'HTTP/\d(?:\.\d)? (\d{3})', text)
    perfdata = {}
    for item in perf.split():
        k, _, v = item.partition('=')
        num = re.match(r'[-\d.]+', v)
        if num:
            perfdata[k] = float(num.group(0))
    return Result(exit=r.returncode, state=NAGIOS_STATES.get(r.returncode, '?'),
                  first_line=first.strip(), status=int(m.group(1)) if m else None,
                  perfdata=perfdata, argv=argv, raw=out + _text(r.stderr))


def htpdate(port, path='/', timeout=CLIENT_TIMEOUT):
    """htpdate -q (query only: never sets, slews or trims the clock) with
    -d: Result(exit, offset (seconds, float; None when htpdate found no
    usable server), polls [(date text, rtt ms, whole-second offset)],
    correction (its last line: 'No time correction needed' or 'Offset ...'))."""
    argv = [need('htpdate'), '-q', '-d', '-n', '-4', url(port, path)]
    r = run(argv, timeout)
    out = _text(r.stdout) + _text(r.stderr)
    polls = [(d, int(rtt), int(off)) for d, rtt, off in
             re.findall(r'^\S+\s+\d+, (\d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT) \((\d+) ms\) '
                        r'=> (-?\d+)$', out, re.M)]
    offset = _float(r'^offset: (-?[\d.]+)$', out)
    if offset is None:
        offset = _float(r'^Offset (-?[\d.]+) seconds$', out)
    if offset is None and re.search(r'^No time correction needed$', out, re.M):
        offset = 0.0
    corr = re.search(r'^(No time correction needed|Offset .*|No server suitable.*)$', out, re.M)
    return Result(exit=r.returncode, offset=offset, polls=polls,
                  correction=corr.group(1) if corr else None, argv=argv, raw=out)


# -- servers-shaped clients: started, asked, stopped ------------------------

class Server:
    """An external process with its own temporary directory, started by
    PID and killed by that PID in stop() (or on leaving a with block)."""

    name = 'server'

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='ringd-%s-' % self.name)
        self.proc = None
        self.log_path = os.path.join(self.dir, 'log')
        self.log_f = None

    def argv(self):
        raise NotImplementedError

    def ready(self):
        """True once the process answers; called until START_TIMEOUT."""
        raise NotImplementedError

    def configure(self):
        """Write the config for this attempt (ports may change)."""

    def start(self, tries=3):
        for attempt in range(tries):
            self.configure()
            self.log_f = open(self.log_path, 'ab')
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=self.log_f, stderr=subprocess.STDOUT,
                                         env=client_env(), cwd=self.dir)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    if self.ready():
                        return self
                except (OSError, http.client.HTTPException):
                    pass
                time.sleep(0.05)
            log = self.log()
            self.stop()
            if 'address already in use' in log.lower() and attempt + 1 < tries:
                continue            # lost the race for a free port: new ports
            raise ClientError('%s did not come up within %.0f s (exit %s); log:\n%s'
                              % (self.name, START_TIMEOUT, self.proc.returncode, log[-4000:]))
        return self

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return _text(f.read())
        except FileNotFoundError:
            return ''

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        if self.log_f is not None:
            self.log_f.close()
            self.log_f = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


def http_get(port, path, timeout=5.0):
    """(status, headers {lowercased: value}, body) by http.client; for
    talking to the servers above and for fetching /metrics."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


# -- HAProxy ----------------------------------------------------------------

class HAProxy(Server):
    """haproxy -db with two backends on the server at PORT, checked every
    100 ms (fall 2, rise 1): 'readyz' (option httpchk GET /readyz) and
    'default' (option httpchk with no arguments: OPTIONS / HTTP/1.0), plus
    a frontend on a free loopback port (self.port) that forwards to
    'readyz'. State comes from the stats socket (a unix socket in the
    temporary directory)."""

    name = 'haproxy'
    BACKENDS = {'readyz': 'option httpchk GET /readyz', 'default': 'option httpchk'}

    def __init__(self, port, backends=None):
        super().__init__()
        self.target = port
        self.backends = dict(backends or self.BACKENDS)
        self.sock = os.path.join(self.dir, 'stats.sock')
        self.cfg = os.path.join(self.dir, 'haproxy.cfg')
        self.port = None

    def configure(self):
        self.port = free_port()
        out = ['global',
               '    stats socket %s mode 600 level admin' % self.sock,
               '    log stderr format raw local0 info',
               'defaults',
               '    mode http',
               '    log global',
               '    timeout connect 1s',
               '    timeout client 5s',
               '    timeout server 5s',
               '    default-server check inter 100ms fall 2 rise 1',
               'frontend fe',
               '    bind %s:%d' % (HOST, self.port),
               '    default_backend be_readyz' if 'readyz' in self.backends else '']
        for name, check in self.backends.items():
            out += ['backend be_%s' % name, '    %s' % check,
                    '    server ringd %s:%d' % (HOST, self.target)]
        with open(self.cfg, 'w') as f:
            f.write('\n'.join(out) + '\n')
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def argv(self):
        return [need('haproxy'), '-db', '-f', self.cfg]

    def ready(self):
        return bool(self.stat())

    def command(self, cmd, timeout=5.0):
        """One stats-socket command, its whole answer as text."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(self.sock)
            s.sendall(cmd.encode() + b'\n')
            return _text(harness.recv_until_eof(s, limit=1 << 24,
                                                deadline=time.monotonic() + timeout))
        finally:
            s.close()

    def stat(self):
        """`show stat` as a list of {column: value} rows."""
        text = self.command('show stat')
        lines = [l for l in text.split('\n') if l.strip()]
        if not lines or not lines[0].startswith('# '):
            return []
        cols = lines[0][2:].split(',')
        return [dict(zip(cols, l.split(','))) for l in lines[1:]]

    def server(self, backend='readyz'):
        """Result(state 'UP'|'DOWN'|..., transition ('1/2' while changing,
        else ''), status (raw), check_status (L7OK, L7STS, L4CON, INI...),
        check_code (the HTTP code of the last check, or None), check_desc,
        last_chk, checked (a check has completed))."""
        for row in self.stat():
            if row.get('pxname') == 'be_' + backend and row.get('svname') == 'ringd':
                status = row.get('status', '')
                words = status.split()
                chk = row.get('check_status', '').lstrip('* ')
                code = row.get('check_code', '')
                return Result(state=words[0] if words else '',
                              transition=words[1] if len(words) > 1 else '',
                              status=status, check_status=chk,
                              check_code=int(code) if code.isdigit() and code != '0' else None,
                              check_desc=row.get('check_desc', ''),
                              last_chk=row.get('last_chk', ''),
                              checked=chk not in ('', 'INI'), raw=row)
        raise ClientError('no server be_%s/ringd in show stat' % backend)

    def wait_state(self, want, backend='readyz', timeout=10.0):
        """Poll until the server is `want` ('UP' or 'DOWN') after at least
        one completed check, without a transition in progress; return that
        Result. Raise ClientError with the last state on timeout."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.server(backend)
            if last.checked and last.state == want and not last.transition:
                return last
            time.sleep(0.05)
        raise ClientError('haproxy be_%s/ringd not %s within %.0f s: %r; log:\n%s'
                          % (backend, want, timeout, last, self.log()[-2000:]))


# -- blackbox_exporter ------------------------------------------------------

def parse_prometheus_text(text):
    """The samples of a text-format exposition: {'name{labels}': float}."""
    out = {}
    for line in text.split('\n'):
        if not line or line.startswith('#'):
            continue
        m = re.match(r'(\S+?(?:\{.*\})?)\s+(\S+)(?:\s+\d+)?$', line)
        if m:
            try:
                out[m.group(1)] = float(m.group(2))
            except ValueError:
                pass
    return out


class Blackbox(Server):
    """prometheus-blackbox-exporter on a free loopback port with one module,
    http_2xx (prober http, ip4, 5 s timeout)."""

    name = 'blackbox'
    CONFIG = ('modules:\n'
              '  http_2xx:\n'
              '    prober: http\n'
              '    timeout: 5s\n'
              '    http:\n'
              '      preferred_ip_protocol: ip4\n')

    def __init__(self):
        super().__init__()
        self.cfg = os.path.join(self.dir, 'blackbox.yml')
        self.port = None

    def configure(self):
        self.port = free_port()
        with open(self.cfg, 'w') as f:
            f.write(self.CONFIG)

    def argv(self):
        return [need('prometheus-blackbox-exporter'), '--config.file=' + self.cfg,
                '--web.listen-address=%s:%d' % (HOST, self.port)]

    def ready(self):
        return http_get(self.port, '/-/healthy', timeout=1.0)[0] == 200

    def probe(self, target, module='http_2xx', timeout=CLIENT_TIMEOUT):
        """Result(success (0/1), status_code, http_version, duration,
        metrics {sample: value}, raw (the probe's debug log))."""
        q = urllib.parse.urlencode({'target': target, 'module': module})
        status, _, body = http_get(self.port, '/probe?' + q, timeout)
        text = _text(body)
        if status != 200:
            raise ClientError('blackbox /probe answered %d: %s' % (status, text[:2000]))
        m = parse_prometheus_text(text)
        # The probe log, for the message when a test fails.
        _, _, dbg = http_get(self.port, '/probe?' + q + '&debug=true', timeout)

        def num(k):
            v = m.get(k)
            return int(v) if v is not None and v == int(v) else v
        return Result(success=num('probe_success'), status_code=num('probe_http_status_code'),
                      http_version=m.get('probe_http_version'),
                      duration=m.get('probe_duration_seconds'),
                      metrics=m, raw=_text(dbg))


def blackbox_probe(port, path='/healthz', module='http_2xx'):
    """One exporter, one probe of http://127.0.0.1:PORT/PATH."""
    with Blackbox() as bb:
        return bb.probe(url(port, path), module)


# -- promtool ---------------------------------------------------------------

def promtool_check_metrics(body, timeout=CLIENT_TIMEOUT):
    """`promtool check metrics` fed body (bytes): Result(exit, ok, problems
    [lines]). Exit 0 clean, 3 lint problems, 1 a parse error."""
    if isinstance(body, str):
        body = body.encode()
    argv = [need('promtool'), 'check', 'metrics']
    r = run(argv, timeout, input=body)
    err = _text(r.stderr) + _text(r.stdout)
    problems = [l for l in err.split('\n') if l.strip()]
    return Result(exit=r.returncode, ok=r.returncode == 0 and not problems,
                  problems=problems, argv=argv, raw=err)


def promtool_check_url(port, path='/metrics', timeout=CLIENT_TIMEOUT):
    """GET /metrics, then promtool on its body; adds status and
    content_type to the Result."""
    status, headers, body = http_get(port, path, timeout)
    res = promtool_check_metrics(body, timeout)
    res.status = status
    res.content_type = headers.get('content-type')
    res.bytes = len(body)
    return res


# -- Prometheus -------------------------------------------------------------

class Prometheus(Server):
    """prometheus scraping http://127.0.0.1:PORT/PATH every second (job
    'ringd'), its TSDB in the temporary directory, its web API on a free
    loopback port."""

    name = 'prometheus'

    def __init__(self, port, path='/metrics'):
        super().__init__()
        self.target, self.path = port, path
        self.cfg = os.path.join(self.dir, 'prometheus.yml')
        self.port = None
        self.started = None

    def configure(self):
        self.port = free_port()
        with open(self.cfg, 'w') as f:
            f.write('global:\n'
                    '  scrape_interval: 1s\n'
                    '  scrape_timeout: 1s\n'
                    '  evaluation_interval: 1s\n'
                    'scrape_configs:\n'
                    '  - job_name: ringd\n'
                    '    metrics_path: %s\n'
                    '    static_configs:\n'
                    '      - targets: [\'%s:%d\']\n' % (self.path, HOST, self.target))
        self.started = time.monotonic()

    def argv(self):
        return [need('prometheus'), '--config.file=' + self.cfg,
                '--storage.tsdb.path=' + os.path.join(self.dir, 'data'),
                '--web.listen-address=%s:%d' % (HOST, self.port)]

    def ready(self):
        return http_get(self.port, '/-/ready', timeout=1.0)[0] == 200

    def api(self, path, timeout=5.0):
        status, _, body = http_get(self.port, path, timeout)
        data = json.loads(_text(body))
        if status != 200 or data.get('status') != 'success':
            raise ClientError('prometheus %s: %d %s' % (path, status, _text(body)[:2000]))
        return data['data']

    def query(self, expr):
        """Instant query: [(labels, float value)]."""
        data = self.api('/api/v1/query?' + urllib.parse.urlencode({'query': expr}))
        return [(r['metric'], float(r['value'][1])) for r in data['result']]

    def target_health(self):
        """(health, lastError) of our target from /api/v1/targets."""
        for t in self.api('/api/v1/targets')['activeTargets']:
            if t.get('labels', {}).get('job') == 'ringd':
                return t.get('health'), t.get('lastError')
        return None, None

    def wait_up(self, timeout=30.0):
        """Poll `up{job="ringd"}` until a sample arrives: Result(value
        (1.0 or 0.0), waited (seconds since start), health, last_error).
        value is None when no sample came within timeout."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            samples = self.query('up{job="ringd"}')
            if samples:
                value = samples[0][1]
                break
            time.sleep(0.2)
        health, err = self.target_health()
        return Result(value=value, waited=round(time.monotonic() - self.started, 2),
                      health=health, last_error=err, raw=self.log()[-2000:])


def prometheus_up(port, path='/metrics', timeout=30.0):
    """Start Prometheus, wait for the first `up` sample, stop it."""
    with Prometheus(port, path) as p:
        return p.wait_up(timeout)


# -- Python's own client and raw bytes ---------------------------------------

def http_client_keepalive(port, paths=('/healthz', '/readyz', '/metrics', '/healthz'),
                          method='GET', timeout=10.0):
    """Several requests on one http.client.HTTPConnection: Result(statuses,
    local_ports (one per request), reused (one connection served all),
    responses [Result(status, version, headers, body)])."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    responses, ports = [], []
    try:
        for p in paths:
            conn.request(method, p)
            ports.append(conn.sock.getsockname()[1])
            resp = conn.getresponse()
            body = resp.read()
            responses.append(Result(status=resp.status, version=resp.version,
                                    headers=header_dict(resp.getheaders()), body=body,
                                    will_close=resp.will_close))
    finally:
        conn.close()
    return Result(statuses=[r.status for r in responses], local_ports=ports,
                  reused=len(set(ports)) == 1 and not any(r.will_close for r in responses[:-1]),
                  responses=responses)


def request_methods(data):
    """The method of each request in data, in order (a request whose body
    happens to start with a method name would be miscounted)."""
    out = []
    for part in data.split(b'\r\n\r\n'):
        m = re.match(rb'([A-Z]+) \S+ HTTP/', part)
        if m:
            out.append(m.group(1).decode())
    return out


def _parse_responses(buf, head_only, closed):
    """Take the whole responses off the front of buf:
    ([Result(status_line, version, status, reason, fields, headers, body)], rest)."""
    responses = []
    while True:
        end = buf.find(b'\r\n\r\n')
        if end < 0:
            break
        head = _text(buf[:end])
        version, status, reason, fields = parse_head(head)
        h = header_dict(fields)
        start = end + 4
        i = len(responses)
        if (head_only[i] if i < len(head_only) else False) or status in (204, 304) \
                or 100 <= status < 200:
            body, used = b'', 0
        elif 'chunked' in ','.join(h.get('transfer-encoding', [])).lower():
            body, used = _dechunk(buf[start:])
            if body is None:
                break
        elif 'content-length' in h:
            n = int(h['content-length'][0])
            if len(buf) - start < n:
                break
            body, used = buf[start:start + n], n
        elif closed:
            body, used = buf[start:], len(buf) - start      # delimited by the close
        else:
            break
        buf = buf[start + used:]
        responses.append(Result(status_line=head.split('\r\n', 1)[0], version=version,
                                status=status, reason=reason, fields=fields, headers=h,
                                body=body))
    return responses, buf


def _dechunk(data):
    """(body, bytes used) of a complete chunked body, or (None, 0)."""
    body, pos = b'', 0
    while True:
        eol = data.find(b'\r\n', pos)
        if eol < 0:
            return None, 0
        size = int(data[pos:eol].split(b';')[0].strip() or b'0', 16)
        pos = eol + 2
        if size == 0:
            end = data.find(b'\r\n\r\n', pos - 2)     # trailers, then a blank line
            if end < 0:
                return None, 0
            return body, end + 4
        if len(data) < pos + size + 2:
            return None, 0
        body += data[pos:pos + size]
        pos += size + 2


def raw_request(port, data, timeout=10.0, close_wait=1.0, head_only=None, expect=None):
    """Send exactly `data`, read the response(s): Result(status_line,
    version, status, reason, fields [(name, value)] in wire order, headers
    {lowercased: [values]}, body of the first response; responses (all of
    them, for pipelined requests); closed (the server closed: EOF or reset
    within close_wait of the last expected response), reset, timed_out (the
    expected responses did not all come within timeout), send_error (the
    server reset the connection while we sent), leftover (bytes after the
    last whole response)).
    expect: how many responses to wait for (default: one per request line
    in data). head_only: a bool for all, or one per response; by default
    response i has no body when request i is a HEAD."""
    methods = request_methods(data)
    if expect is None:
        expect = max(1, len(methods))
    if head_only is None:
        head_only = [m == 'HEAD' for m in methods]
    elif isinstance(head_only, bool):
        head_only = [head_only] * max(expect, len(methods))
    s = socket.create_connection((HOST, port), timeout=timeout)
    buf, responses = b'', []
    closed = reset = timed_out = False
    send_error = None
    deadline = time.monotonic() + timeout
    try:
        try:
            s.sendall(data)
        except OSError as e:
            send_error = e.__class__.__name__
        while not closed:
            now = time.monotonic()
            if len(responses) >= expect and not buf:
                left = min(deadline - now, close_wait)
            else:
                left = deadline - now
            if left <= 0:
                timed_out = len(responses) < expect
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                timed_out = len(responses) < expect
                break
            except ConnectionResetError:
                b, reset = b'', True
            if not b:
                closed = True
            buf += b
            got, buf = _parse_responses(buf, head_only[len(responses):], closed)
            responses += got
    finally:
        s.close()
    first = responses[0] if responses else Result(status_line=None, version=None,
                                                  status=None, reason=None, fields=[],
                                                  headers={}, body=b'')
    return Result(status_line=first.status_line, version=first.version, status=first.status,
                  reason=first.reason, fields=first.fields, headers=first.headers,
                  body=first.body, responses=responses, closed=closed, reset=reset,
                  timed_out=timed_out, send_error=send_error, leftover=buf)


def kubelet_request(port, path='/healthz'):
    """The bytes kubelet 1.30 sends for an httpGet probe."""
    return (b'GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: kube-probe/1.30\r\n'
            b'Accept: */*\r\nConnection: close\r\n\r\n' % (path.encode(), HOST.encode(), port))


def kubelet_probe(port, path='/healthz', timeout=10.0):
    """raw_request() of kubelet's probe; kubelet counts 200-399 as success
    and the server is expected to close (Connection: close)."""
    return raw_request(port, kubelet_request(port, path), timeout)
