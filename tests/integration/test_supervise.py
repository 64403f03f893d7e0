#!/usr/bin/env python3
"""What systemd sees: READY=1 once the listeners answer, WATCHDOG=1 at the
ping interval while idle and under load and not while a worker is stuck
(the hang fixture blocks one), STATUS= kept current, STOPPING=1 on
SIGTERM; and SIGUSR1's counter lines."""

import os
import re
import signal
import socket
import threading
import time

import harness
from harness import connect, echo_roundtrip, payload, assert_same

FIXTURES = os.environ.get('RINGD_FIXTURE_DIR', '')
# Short enough for a quick test, long enough that a busy machine (the
# suite runs in parallel on two cores) does not delay a ping past it.
WATCHDOG_USEC = 1000000
PING = WATCHDOG_USEC / 2e6


def plugin_dir(ctx):
    """The built plugins and the hang fixture in one directory."""
    if not os.path.exists(os.path.join(FIXTURES, 'hang.so')):
        raise harness.DaemonError('RINGD_FIXTURE_DIR=%r has no hang.so' % FIXTURES)
    d = os.path.join(ctx.tempdir(), 'plugins')
    os.makedirs(d)
    built = os.path.join(os.path.dirname(ctx.ringd), '..', 'plugins')
    for name in os.listdir(built):
        if name.endswith('.so'):
            os.symlink(os.path.join(built, name), os.path.join(d, name))
    os.symlink(os.path.join(FIXTURES, 'hang.so'), os.path.join(d, 'hang.so'))
    return d


def watchdog_daemon(ctx, env=None, hang_ms='4s'):
    services = {
        'echo': {'listen': 'tcp://127.0.0.1:0, udp://127.0.0.1:0'},
        'hang': {'listen': 'tcp://127.0.0.1:0', 'hang_ms': hang_ms},
    }
    env = {'WATCHDOG_USEC': str(WATCHDOG_USEC)} if env is None else env
    return ctx.daemon(services, ringd={'plugin_dir': plugin_dir(ctx)}, env=env)


def collect(d, seconds):
    """Every notify datagram for `seconds`: [(monotonic time, text)]."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msg = d._read_notify(max(0.01, end - time.monotonic()))
        if msg is not None:
            out.append((time.monotonic(), msg))
    return out


def pings(msgs):
    return [t for t, m in msgs if 'WATCHDOG=1' in m.split('\n')]


def max_gap(times, start, end):
    edges = [start] + times + [end]
    return max(b - a for a, b in zip(edges, edges[1:]))


def check_regular(what, msgs, start, end):
    ts = pings(msgs)
    assert len(ts) >= int((end - start) / PING) - 2, \
        '%s: %d pings in %.1f s at a %.1f s interval: %r' % (what, len(ts), end - start, PING, msgs)
    gap = max_gap(ts, start, end)
    # systemd's limit is WATCHDOG_USEC; a ping every PING leaves half as margin.
    assert gap < WATCHDOG_USEC / 1e6, '%s: %.2f s without WATCHDOG=1: %r' % (what, gap, ts)


def test_ready_after_listeners_answer(ctx):
    """At READY=1 every TCP listener answers and UDP echoes: the workers are up."""
    d = watchdog_daemon(ctx)
    for a in d.addrs('echo') + d.addrs('hang'):
        if a.scheme == 'tcp':
            assert_same(echo_roundtrip(a, b'ready?'), b'ready?')
        else:
            got, _ = harness.udp_echo(a, b'ready?')
            assert got == b'ready?', got
    first = d.messages[0].split('\n')
    assert 'READY=1' in first, d.messages
    d.stop()


def test_watchdog_pings_idle_loaded_and_stop_for_a_stuck_worker(ctx):
    d = watchdog_daemon(ctx)
    t0 = time.monotonic()
    check_regular('idle', collect(d, 1.6), t0, time.monotonic())

    addr = d.addr('tcp')
    stop = threading.Event()
    done = []

    def load():
        data = payload(64 << 10, seed=3)
        while not stop.is_set():
            assert_same(echo_roundtrip(addr, data), data)
            done.append(1)
    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    t1 = time.monotonic()
    loaded = collect(d, 2.0)
    t2 = time.monotonic()
    stop.set()
    for t in threads:
        t.join(10)
    assert len(done) >= 10, 'only %d echo round trips under load' % len(done)
    check_regular('under load', loaded, t1, t2)

    s = connect(d.addr('tcp', svc='hang'))
    th = time.monotonic()
    s.sendall(b'hang')
    stuck = collect(d, 5.5)
    assert harness.recv_exact(s, 4) == b'hang'
    s.close()
    ts = pings(stuck)
    # One check may still see the beats of before the hang; none after
    # that until the worker wakes 4 s later.
    during = [t - th for t in ts if th + 2 * PING + 0.1 < t < th + 3.9]
    assert not during, 'WATCHDOG=1 while a worker was stuck, at +%r s' % during
    after = [t - th for t in ts if t > th + 4.0]
    assert after, 'no WATCHDOG=1 after the worker woke up: %r' % [t - th for t in ts]

    err = d.stop()
    stalls = re.findall(r'supervise: worker is not making progress; watchdog pings stop '
                        r'worker=(\d+)', err)
    assert len(stalls) == 1, 'expected one stall line:\n' + err
    assert re.search(r'error: supervise: .* worker=%s beats=\d+' % stalls[0], err), err
    assert re.search(r'supervise: worker is making progress again worker=%s$' % stalls[0], err,
                     re.M), err
    fields = d.notify_fields()
    assert '1' in fields.get('STOPPING', []), 'no STOPPING=1: %r' % d.messages


def test_no_watchdog_without_watchdog_usec(ctx):
    for env in ({}, {'WATCHDOG_USEC': str(WATCHDOG_USEC), 'WATCHDOG_PID': '1'},
                {'WATCHDOG_USEC': 'soon'}):
        d = watchdog_daemon(ctx, env=env)
        msgs = collect(d, 1.0)
        assert not pings(msgs), 'WATCHDOG=1 with %r: %r' % (env, msgs)
        err = d.stop()
        assert 'watchdog on' not in err, err


def test_status_follows_the_connections(ctx):
    d = watchdog_daemon(ctx)
    held = [connect(d.addr('tcp')) for _ in range(3)]
    for s in held:
        s.sendall(b'x')
        assert harness.recv_exact(s, 1) == b'x'
    want = re.compile(r'^STATUS=running backend=%s workers=2 services=2 connections=3$'
                      % d.expected_engine())
    msgs = collect(d, 2.0 * 1.5 + 0.5)
    lines = [l for _, m in msgs for l in m.split('\n') if l.startswith('STATUS=')]
    assert any(want.match(l) for l in lines), 'no %s in %r' % (want.pattern, lines)
    # Only a change is sent: at most one line per refresh.
    assert len(lines) <= 2, lines
    for s in held:
        s.close()
    msgs = collect(d, 2.0 * 1.5 + 0.5)
    lines = [l for _, m in msgs for l in m.split('\n') if l.startswith('STATUS=')]
    assert any(l.endswith(' connections=0') for l in lines), lines
    d.stop()


def wait_log(d, pattern, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, d.stderr(), re.M)
        if m:
            return m
        time.sleep(0.05)
    raise AssertionError('no line matching %r in stderr:\n%s' % (pattern, d.stderr()))


def test_sigusr1_logs_the_counters(ctx):
    d = watchdog_daemon(ctx, env={})
    addr = d.addr('tcp')
    sizes = [1000, 20000, 5]
    for i, n in enumerate(sizes):
        data = payload(n, seed=i)
        assert_same(echo_roundtrip(addr, data), data)
    held = connect(addr)
    held.sendall(b'ab')
    assert harness.recv_exact(held, 2) == b'ab'
    for _ in range(2):
        got, _ = harness.udp_echo(d.addr('udp'), b'udp!')
        assert got == b'udp!'
    total = sum(sizes) + 2 + 2 * 4
    want = {'accepted': 4, 'active': 1, 'closed': 3, 'refused': 0, 'bytes_in': total,
            'bytes_out': total, 'datagrams_in': 2, 'datagrams_out': 2,
            'datagrams_dropped': 0}
    # A worker counts a reply after its send returns, so the client can
    # hold the reply (and the closes may still be on their way) before
    # the counters show it: ask again until they settle or time runs out.
    deadline = time.monotonic() + 5
    got = None
    while got != want and time.monotonic() < deadline:
        d.signal(signal.SIGUSR1)
        time.sleep(0.2)
        lines = re.findall(r'^notice: ringd: counters svc=echo (.*)$', d.stderr(), re.M)
        if lines:
            got = {k: int(v) for k, v in (kv.split('=') for kv in lines[-1].split())}
    assert got is not None, 'no counters line after SIGUSR1:\n' + d.stderr()
    assert got == want, (got, want)
    hang = re.findall(r'^notice: ringd: counters svc=hang accepted=0 active=0 ', d.stderr(), re.M)
    assert hang, d.stderr()
    m = wait_log(d, r'^notice: ringd: counters in total accepted=4 active=1 closed=3 .*'
                 r'bytes_in=%d ' % total)
    assert m
    held.close()
    d.stop()


if __name__ == '__main__':
    harness.main([test_ready_after_listeners_answer,
                  test_watchdog_pings_idle_loaded_and_stop_for_a_stuck_worker,
                  test_no_watchdog_without_watchdog_usec,
                  test_status_follows_the_connections,
                  test_sigusr1_logs_the_counters])
