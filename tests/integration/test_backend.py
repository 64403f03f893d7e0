#!/usr/bin/env python3
"""Engine choice: what each variant must pick, what it logs, and that an
explicit io_uring that cannot start is an error, never a silent fallback."""

import re

import harness
from harness import assert_same, echo_roundtrip, payload



def blocked_reason(text):
    """The reason ringd gives when no-uring blocks io_uring (EPERM), or, in
    a -Dio_uring=disabled build, that it has no io_uring engine at all."""
    t = text.lower()
    return 'not permitted' in t or 'built without io_uring' in t

def test_variant_engine_and_startup_line(ctx):
    """The harness checks STATUS backend= and the start-up line for every
    daemon; here also that the start-up line names every listener."""
    d = ctx.daemon()
    err = d.stderr()
    want = d.expected_engine()
    line = next((l for l in err.splitlines() if 'backend=' + want in l), None)
    assert line is not None, err
    for a in d.addrs():
        assert a.url in err or ('%s:%d' % (a.host, a.port)) in err, \
            'listener %s not named in the start-up log:\n%s' % (a.url, err)
    if ctx.backend == 'auto-no-uring':
        m = re.search(r'loop: io_uring unavailable \((.+)\); using epoll', err)
        assert m and blocked_reason(m.group(1)), \
            'fallback reason should be EPERM from seccomp:\n' + err
        assert len(re.findall('io_uring unavailable', err)) == 1, \
            'fallback logged more than once (workers=2):\n' + err
    elif ctx.backend == 'epoll':
        assert 'io_uring unavailable' not in err, 'explicit epoll should not probe/complain:\n' + err
    data = payload(1 << 20, seed=61)
    assert_same(echo_roundtrip(d.addr('tcp'), data), data)
    got, _ = harness.udp_echo(d.addr('udp'), b'engine')
    assert got == b'engine'
    d.stop()


def test_set_overrides_backend(ctx):
    """-s ringd.backend=... wins over the file."""
    want = 'auto' if ctx.backend == 'auto-no-uring' else ctx.backend
    other = 'epoll' if want == 'io_uring' else 'io_uring'
    if ctx.backend == 'auto-no-uring':
        other = 'epoll'
    ini = ctx.ini(ringd={'backend': other})
    d = ctx.daemon(ini=ini, args=['-s', 'ringd.backend=' + want])
    got, _ = harness.udp_echo(d.addr('udp'), b'override')
    assert got == b'override'
    d.stop()


def test_workers_status(ctx):
    for n in ('1', '3'):
        d = ctx.daemon(ringd={'workers': n})
        assert d.status.get('workers') == n, 'STATUS %r, workers = %s' % (d.status, n)
        harness.assert_same(echo_roundtrip(d.addr('tcp'), b'w' * 70000), b'w' * 70000)
        d.stop()


def test_explicit_io_uring_under_no_uring_fails(ctx):
    d = ctx.daemon(ringd={'backend': 'io_uring'}, no_uring=True, expect_ready=False)
    rc = d.run_to_exit()
    err = d.stderr()
    assert rc == 1, 'exit %s, expected 1; stderr:\n%s' % (rc, err)
    assert 'io_uring' in err and blocked_reason(err), \
        'message should name io_uring and the reason (EPERM):\n' + err
    assert 'READY=1' not in ''.join(d.messages) and not any('READY=1' in m for m in d.messages)
    assert 'using epoll' not in err, 'explicit io_uring silently fell back:\n' + err


def test_version_reports_backends(ctx):
    r = ctx.run(['-V'], no_uring=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, (r.returncode, out)
    lines = out.splitlines()
    assert lines and lines[0] == 'ringd 0.1.0', out
    assert re.search(r'^io_uring: (yes|no \(.+\))$', out, re.M), out
    assert re.search(r'^epoll: yes$', out, re.M), out
    r = ctx.run(['-V'], no_uring=True)
    out = r.stdout + r.stderr
    assert r.returncode == 0, (r.returncode, out)
    m = re.search(r'^io_uring: no \((.+)\)$', out, re.M)
    assert m, 'under no-uring -V should say io_uring: no (reason):\n' + out
    assert blocked_reason(m.group(1)), out
    assert re.search(r'^epoll: yes$', out, re.M), out


def test_auto_on_kernel_without_io_uring(ctx):
    """ENOSYS from io_uring_setup (a kernel older than 5.1, or one built
    without it): auto says so and serves on epoll; -V gives the reason;
    an explicit io_uring is refused with it."""
    d = ctx.daemon(backend='auto-no-uring', no_uring='ENOSYS')
    err = d.stderr()
    if 'built without io_uring' not in err:
        assert 'Function not implemented: kernel without io_uring' in err, err
    data = payload(4096, seed=5)
    assert_same(echo_roundtrip(d.addr('tcp'), data), data, 'echo on epoll')
    d.stop()
    r = ctx.run(['-V'], no_uring='ENOSYS')
    out = r.stdout + r.stderr
    assert r.returncode == 0, (r.returncode, out)
    assert re.search(r'^io_uring: no \((Function not implemented|.*built without)', out, re.M), out
    d = ctx.daemon(ringd={'backend': 'io_uring'}, no_uring='ENOSYS', expect_ready=False)
    rc = d.run_to_exit()
    err = d.stderr()
    assert rc == 1, 'exit %s, expected 1; stderr:\n%s' % (rc, err)
    assert 'Function not implemented' in err or 'built without io_uring' in err, err
    assert 'using epoll' not in err, 'explicit io_uring silently fell back:\n' + err


def test_worker_that_cannot_start_is_fatal(ctx):
    """With 6 descriptors the listeners open but a worker's loop cannot
    (EMFILE): one error line naming the worker and the reason, no READY=1,
    exit 1, and no half-started daemon left serving."""
    d = ctx.daemon(nofile=6, expect_ready=False)
    rc = d.run_to_exit()
    err = d.stderr()
    assert rc == 1, 'exit %s, expected 1; stderr:\n%s' % (rc, err)
    assert re.search(r'^error: worker: loop failed to start backend=(io_uring|epoll) '
                     r'error="Too many open files" worker=\d+$', err, re.M), err
    assert 'started' not in err, 'start-up line despite a failed worker:\n' + err
    assert not any('READY=1' in m.split('\n') for m in d.messages), d.messages


def test_reuseport_modes(ctx):
    """Shared listener and per-worker SO_REUSEPORT listeners both serve."""
    import test_echo_tcp
    for mode in ('yes', 'no'):
        d = ctx.daemon(ringd={'reuseport': mode, 'workers': '2'})
        data = payload(1 << 20, seed=62)
        assert_same(echo_roundtrip(d.addr('tcp'), data), data, 'reuseport=' + mode)
        test_echo_tcp._concurrent(d.addr('tcp'), 100, [10, 3000, 50000])
        for i in range(20):
            got, _ = harness.udp_echo(d.addr('udp'), b'r%d' % i)
            assert got == b'r%d' % i
        d.stop()


if __name__ == '__main__':
    harness.main([
        test_variant_engine_and_startup_line,
        test_set_overrides_backend,
        test_workers_status,
        test_explicit_io_uring_under_no_uring_fails,
        test_version_reports_backends,
        test_reuseport_modes,
        test_auto_on_kernel_without_io_uring,
        test_worker_that_cannot_start_is_fatal,
    ])
