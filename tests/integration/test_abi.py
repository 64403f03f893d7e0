#!/usr/bin/env python3
"""The ABI members appended after the first release, seen from outside:
the core's per-service counters and a plugin's own through the metrics
walk, input holding, the drain hook with drain_delay, and a plugin built
against the first ABI's size. The abi2 fixture (tests/unit/fixtures)
speaks a line protocol that exposes each of them."""

import os
import re
import signal
import socket
import time

import harness

FIXTURES = os.environ.get('RINGD_FIXTURE_DIR', '')
LINE = re.compile(r'^(\w+) (counter|gauge)\{(.*)\} (\S+)$')


def need_fixture(name):
    if not os.path.exists(os.path.join(FIXTURES, name + '.so')):
        raise harness.DaemonError('RINGD_FIXTURE_DIR=%r has no %s.so' % (FIXTURES, name))


def recv_line(s, timeout=5.0):
    s.settimeout(timeout)
    buf = b''
    while not buf.endswith(b'\n'):
        b = s.recv(1)
        assert b, 'EOF after %r' % buf
        buf += b
    return buf.decode()


def unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == '\\':
            out.append({'n': '\n', 'c': ',', '\\': '\\'}[v[i + 1]])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return ''.join(out)


def plugin_dir(ctx, *fixtures):
    """A plugin directory holding the built plugins and the fixtures
    named: plugin_dir takes one directory."""
    d = os.path.join(ctx.tempdir(), 'plugins')
    os.makedirs(d, exist_ok=True)
    built = os.path.join(os.path.dirname(ctx.ringd), '..', 'plugins')
    for name in os.listdir(built):
        if name.endswith('.so'):
            os.symlink(os.path.join(built, name), os.path.join(d, name))
    for f in fixtures:
        need_fixture(f)
        os.symlink(os.path.join(FIXTURES, f + '.so'), os.path.join(d, f + '.so'))
    return d


def scrape(addr):
    """Every series of the walk: {(name, frozenset(labels)): value}, and
    the type of each family."""
    s = harness.connect(addr)
    s.sendall(b'metrics\n')
    series, types = {}, {}
    buf = b''
    s.settimeout(5)
    while not buf.endswith(b'end\n'):
        b = s.recv(65536)
        assert b, 'EOF in the middle of a scrape'
        buf += b
    s.close()
    for line in buf.decode().splitlines()[:-1]:
        m = LINE.match(line)
        assert m, 'bad line %r' % line
        name, kind, labels, value = m.groups()
        pairs = frozenset((k, unescape(v)) for k, v in
                          (kv.split('=', 1) for kv in labels.split(',') if kv))
        key = (name, pairs)
        assert key not in series, 'series twice: %r' % line
        series[key] = float(value)
        assert types.setdefault(name, kind) == kind, 'family %s changes type' % name
    return series, types


def value(series, name, **labels):
    return series.get((name, frozenset(labels.items())))


def wait_for(addr, check, timeout=5.0):
    """Scrape until check(series) holds; returns the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        series, types = scrape(addr)
        why = check(series)
        if why is None:
            return series, types
        assert time.monotonic() < deadline, why
        time.sleep(0.05)


def abi2_daemon(ctx, ringd=None, extra=None):
    core = {'workers': '2', 'plugin_dir': plugin_dir(ctx, 'abi2')}
    core.update(ringd or {})
    svcs = {'abi2': {'plugin': 'abi2', 'listen': 'tcp://127.0.0.1:0'}}
    svcs.update(extra or {})
    return ctx.daemon(services=svcs, ringd=core)


def test_metrics_count_core_events(ctx):
    """Accepts, bytes, closes by reason, refusals, datagrams and the
    plugin's own counters appear per service, summed over workers."""
    d = abi2_daemon(ctx, extra={
        'echo': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0, udp://127.0.0.1:0'},
        'idle': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0', 'idle_timeout': '200ms'},
        'guarded': {'plugin': 'echo', 'listen': 'tcp://127.0.0.1:0', 'deny': '127.0.0.2'},
    })
    m = d.addr('tcp', svc='abi2')
    for i in range(3):
        harness.assert_same(harness.echo_roundtrip(d.addr('tcp'), b'x' * 1000), b'x' * 1000)
    for i in range(2):
        assert harness.udp_echo(d.addr('udp'), b'0123456789')[0] == b'0123456789'
    idle = harness.connect(d.addr('tcp', svc='idle'))
    s = harness.client_socket(socket.AF_INET, socket.SOCK_STREAM, ('127.0.0.2', 0))
    s.settimeout(5)
    try:
        s.connect(d.addr('tcp', svc='guarded').sockaddr)
        assert s.recv(1) == b''
    except ConnectionResetError:
        pass
    s.close()
    c = harness.connect(m)
    c.sendall(b'count 5\n')
    assert recv_line(c) == 'ok\n'

    def done(sr):
        want = [
            (('ringd_connections_accepted_total', 'echo', 'tcp'), 3),
            (('ringd_connections_closed_total', 'echo', 'tcp', 'peer'), 3),
            (('ringd_connections_closed_total', 'idle', 'tcp', 'idle'), 1),
            (('ringd_connections_refused_total', 'guarded', 'tcp', 'deny'), 1),
        ]
        for (name, svc, tr, *reason), v in want:
            labels = {'service': svc, 'transport': tr}
            if reason:
                labels['reason'] = reason[0]
            got = value(sr, name, **labels)
            if got != v:
                return '%s %s = %s, want %s' % (name, labels, got, v)
        return None

    sr, types = wait_for(m, done)
    svc = {'service': 'echo', 'transport': 'tcp'}
    assert value(sr, 'ringd_received_bytes_total', **svc) == 3000
    assert value(sr, 'ringd_sent_bytes_total', **svc) == 3000
    assert value(sr, 'ringd_connections_active', **svc) == 0
    udp = {'service': 'echo', 'transport': 'udp'}
    assert value(sr, 'ringd_datagrams_received_total', **udp) == 2
    assert value(sr, 'ringd_datagrams_sent_total', **udp) == 2
    assert value(sr, 'ringd_received_bytes_total', **udp) == 20
    assert value(sr, 'ringd_datagrams_dropped_total', reason='rate', **udp) == 0
    # The scraping connection and c are open on abi2.
    assert value(sr, 'ringd_connections_active', service='abi2', transport='tcp') == 2
    assert value(sr, 'ringd_fixture_events_total', service='abi2', kind='plain') == 5
    # Label values reach the writer raw; escaping is the writer's.
    assert value(sr, 'ringd_fixture_events_total', service='abi2',
                 kind='needs "escaping"\\\n') == 1
    assert value(sr, 'ringd_fixture_opens_total', service='abi2') >= 2
    assert types['ringd_connections_active'] == 'gauge'
    assert types['ringd_connections_accepted_total'] == 'counter'
    info = [dict(l) for n, l in sr if n == 'ringd_build_info']
    assert len(info) == 1 and info[0]['backend'] == d.expected_engine(), info
    assert re.match(r'^\d+\.\d+\.\d+', info[0]['version']), info
    assert value(sr, 'ringd_draining') == 0
    assert value(sr, 'process_open_fds') > 5
    assert value(sr, 'process_max_fds') >= value(sr, 'process_open_fds')
    assert value(sr, 'process_resident_memory_bytes') > 1 << 20
    assert abs(value(sr, 'process_start_time_seconds') - time.time()) < 120
    assert value(sr, 'process_cpu_seconds_total') > 0
    c.close()
    idle.close()
    d.stop()


def test_hold_input_delivers_nothing_until_released(ctx):
    """hold N: the fixture holds its input and sends N KiB. What the
    client sends meanwhile must not reach the plugin (it would answer
    VIOLATION) and must arrive, in order, once the hold is released."""
    d = abi2_daemon(ctx)
    for rnd in range(5):
        # A small window, set before the handshake: shrinking it after
        # would make the kernel drop segments it already allowed.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.settimeout(10)
        s.connect(d.addr('tcp', svc='abi2').sockaddr)
        s.sendall(b'hold 1024\n')
        got = harness.recv_exact(s, 4096)
        # Sent while held: three commands in separate segments.
        for _ in range(3):
            s.sendall(b'state\n')
            time.sleep(0.02)
        got += harness.recv_exact(s, (1024 << 10) - 4096)
        assert got == b'z' * (1024 << 10), 'round %d: flood corrupted' % rnd
        rest = b''
        s.settimeout(5)
        while rest.count(b'\n') < 4:
            b = s.recv(4096)
            assert b, 'EOF after %r' % rest
            rest += b
        assert rest == b'released\n' + b'state 0\n' * 3, 'round %d: %r' % (rnd, rest)
        s.close()
    d.stop()


def test_drain_delay_keeps_accepting_then_drains(ctx):
    """SIGTERM with drain_delay: the state turns draining at once while
    new connections are still accepted and served; once the delay is
    over the plugin's on_drain() ends every connection and the daemon
    exits 0."""
    d = abi2_daemon(ctx, ringd={'drain_delay': '1500ms'})
    addr = d.addr('tcp', svc='abi2')
    old = harness.connect(addr)
    old.sendall(b'state\n')
    assert recv_line(old) == 'state 0\n'
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    time.sleep(0.3)
    new = harness.connect(addr)
    new.sendall(b'state\n')
    assert recv_line(new) == 'state 1\n', 'a connection made during the delay'
    old.sendall(b'state\n')
    assert recv_line(old) == 'state 1\n'
    for s in (old, new):
        assert recv_line(s, timeout=5) == 'drain\n'
        assert s.recv(16) == b'', 'no FIN after drain'
        s.close()
    took = time.monotonic() - t0
    assert took >= 1.4, 'drained after %.2f s, drain_delay is 1.5 s' % took
    assert d.wait(10) == 0, d.stderr()
    assert 'draining before the stop signal=SIGTERM drain_delay_ms=1500' in d.stderr(), d.stderr()


def test_second_sigterm_ends_the_delay(ctx):
    d = abi2_daemon(ctx, ringd={'drain_delay': '60s'})
    d.signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    assert d.wait(10) == 0, d.stderr()
    assert time.monotonic() - t0 < 5, 'the second SIGTERM did not cut the delay'
    assert 'received again, stopping now signal=SIGTERM' in d.stderr(), d.stderr()


def test_plugin_built_against_the_first_abi(ctx):
    """A plugin whose size ends before counters(): it loads, serves, and
    the hooks past its size are never called (they abort), on a scrape
    or on a stop; the stream_flags past its size are not read either (a
    silent client is the daemon's at once, not deferred)."""
    d = ctx.daemon(services={
        'old': {'plugin': 'old_abi', 'listen': 'tcp://127.0.0.1:0'},
        'abi2': {'plugin': 'abi2', 'listen': 'tcp://127.0.0.1:0'},
    }, ringd={'plugin_dir': plugin_dir(ctx, 'abi2', 'old_abi')})
    addr = d.addr('tcp', svc='old')
    harness.assert_same(harness.echo_roundtrip(addr, b'old plugin\n'), b'old plugin\n')
    idle = harness.connect(addr)
    series, _ = wait_for(d.addr('tcp', svc='abi2'), lambda s: None if value(
        s, 'ringd_connections_active', service='old', transport='tcp') == 1
        else 'the silent client of the old plugin was not accepted', timeout=0.7)
    assert value(series, 'ringd_connections_accepted_total', service='old',
                 transport='tcp') >= 2
    assert not [n for n, l in series if dict(l).get('service') == 'old' and
                n.startswith('ringd_fixture')]
    d.signal(signal.SIGTERM)
    idle.settimeout(5)
    assert idle.recv(1) == b''
    assert d.wait(10) == 0, d.stderr()


if __name__ == '__main__':
    harness.main([
        test_metrics_count_core_events,
        test_hold_input_delivers_nothing_until_released,
        test_drain_delay_keeps_accepting_then_drains,
        test_second_sigterm_ends_the_delay,
        test_plugin_built_against_the_first_abi,
    ])
