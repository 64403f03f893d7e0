#!/usr/bin/env python3
"""qotd (RFC 865) against real clients: nc and socat get one quote from the
file and a close, UDP gets a quote, pick = daily agrees across connections
and transports, input never delays the reply, and broken quotes files fail
-t and start-up with the INI's FILE:LINE and the quotes file's line."""

import os
import re
import shutil
import subprocess
import time

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.normpath(os.path.join(HERE, '..', '..', 'conf', 'quotes'))


def parse_quotes(data):
    """The quotes as the daemon sends them: blank lines around each quote
    dropped, CRLF line ends, empty quotes skipped."""
    out, cur = [], []

    def flush():
        while cur and not cur[-1].strip(b' '):
            cur.pop()
        if cur:
            out.append(b''.join(line + b'\r\n' for line in cur))
        cur.clear()
    for line in data.split(b'\n'):
        if line.endswith(b'\r'):
            line = line[:-1]
        if line == b'%':
            flush()
        elif cur or line.strip(b' '):
            cur.append(line)
    flush()
    return out


def shipped_quotes():
    with open(SHIPPED, 'rb') as f:
        return parse_quotes(f.read())


def write(ctx, name, data):
    path = os.path.join(ctx.tempdir(), name)
    with open(path, 'wb') as f:
        f.write(data)
    return path


def services(quotes, pick='daily', listen='tcp://127.0.0.1:0, udp://127.0.0.1:0'):
    return {'qotd': {'quotes': quotes, 'pick': pick, 'listen': listen}}


def tcp_quote(addr, send=None, timeout=5.0):
    s = harness.connect(addr, timeout)
    try:
        if send:
            s.sendall(send)
        return harness.recv_until_eof(s, limit=4096, deadline=time.monotonic() + timeout)
    finally:
        s.close()


def udp_quote(addr, data=b'?'):
    got, peer = harness.udp_echo(addr, data)
    assert peer == addr.sockaddr, (peer, addr)
    return got


def day_index(n):
    """The quote pick = daily gives now, and a moment ago (a test that runs
    across midnight UTC may see either)."""
    return {int(t // 86400) % n for t in (time.time() - 5, time.time())}


def test_shipped_quotes_file(ctx):
    quotes = shipped_quotes()
    assert len(quotes) >= 50, 'conf/quotes holds only %d quotes' % len(quotes)
    for q in quotes:
        assert len(q) < 512, 'a shipped quote is %d bytes: %r' % (len(q), q[:40])
        assert re.fullmatch(rb'[\x20-\x7e\r\n]+', q), q
        assert b'-- ' in q, 'shipped quote without attribution: %r' % q[:40]
    ini = write(ctx, 'ringd.ini', ctx.ini(services(SHIPPED)).encode())
    r = ctx.run(['-c', ini, '-t'])
    assert r.returncode == 0, r.stdout + r.stderr


def test_default_quotes_from_build_tree(ctx):
    """No quotes = at all: the build tree's ringd (its plugins) serves
    conf/quotes, over TCP and UDP, and -t accepts the section."""
    quotes = shipped_quotes()
    svc = {'qotd': {'pick': 'sequential', 'listen': 'tcp://127.0.0.1:0, udp://127.0.0.1:0'}}
    ini = write(ctx, 'ringd.ini', ctx.ini(svc).encode())
    r = ctx.run(['-c', ini, '-t'])
    assert r.returncode == 0, r.stdout + r.stderr
    d = ctx.daemon(svc)
    t, u = d.addr('tcp', 'qotd'), d.addr('udp', 'qotd')
    got = [tcp_quote(t) for _ in range(3)] + [udp_quote(u)]
    for q in got:
        assert q in quotes, 'not a quote of conf/quotes: %r' % q[:80]
    d.stop()


def test_tcp_nc_one_quote_then_close(ctx):
    nc = shutil.which('nc')
    if not nc:
        raise harness.Skip('nc not installed')
    quotes = shipped_quotes()
    d = ctx.daemon(services(SHIPPED, pick='random'))
    t = d.addr('tcp', 'qotd')
    for _ in range(5):
        # -d: nc reads nothing from stdin; it exits at the server's close.
        r = subprocess.run([nc, '-d', t.host, str(t.port)], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, (r.returncode, r.stderr)
        assert r.stdout in quotes, 'nc got %r' % r.stdout[:80]
    d.stop()


def test_tcp_socat_one_quote(ctx):
    socat = shutil.which('socat')
    if not socat:
        raise harness.Skip('socat not installed')
    quotes = shipped_quotes()
    d = ctx.daemon(services(SHIPPED, pick='sequential'))
    t = d.addr('tcp', 'qotd')
    r = subprocess.run([socat, '-u', 'TCP:%s:%d' % (t.host, t.port), '-'],
                       capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout in quotes, 'socat got %r' % r.stdout[:80]
    d.stop()


def test_udp_quote(ctx):
    quotes = shipped_quotes()
    d = ctx.daemon(services(SHIPPED, pick='random'))
    u = d.addr('udp', 'qotd')
    for msg in (b'', b'x', b'quote please\r\n', b'z' * 1400):
        got = udp_quote(u, msg)
        assert got in quotes, 'UDP reply %r' % got[:80]
        assert len(got) < 512
    d.stop()


def test_daily_same_everywhere(ctx):
    """Everyone gets the same quote all UTC day: every connection (served
    by either of the two workers) and every datagram."""
    quotes = shipped_quotes()
    d = ctx.daemon(services(SHIPPED, pick='daily'))
    t, u = d.addr('tcp', 'qotd'), d.addr('udp', 'qotd')
    got = {tcp_quote(t) for _ in range(6)} | {udp_quote(u) for _ in range(3)}
    assert len(got) == 1, 'daily gave %d different quotes' % len(got)
    q = got.pop()
    assert quotes.index(q) in day_index(len(quotes)), \
        'quote %d, expected (days since epoch) %% %d' % (quotes.index(q), len(quotes))
    d.stop()


def test_sequential_and_random_from_file(ctx):
    path = write(ctx, 'q', b'one\n%\ntwo\n%\nthree\n')
    want = [b'one\r\n', b'two\r\n', b'three\r\n']
    for pick in ('sequential', 'random'):
        d = ctx.daemon(services(path, pick=pick, listen='tcp://127.0.0.1:0'),
                       ringd={'workers': '1'})
        t = d.addr('tcp', 'qotd')
        got = [tcp_quote(t) for _ in range(30)]
        assert set(got) <= set(want), got
        if pick == 'sequential':
            assert got == (want * 10), got
        else:
            assert len(set(got)) >= 2, got
        d.stop()


def test_input_ignored_and_not_delayed(ctx):
    quotes = shipped_quotes()
    d = ctx.daemon(services(SHIPPED))
    t = d.addr('tcp', 'qotd')
    want = tcp_quote(t)
    assert want in quotes
    # A client that says nothing gets the quote at once.
    t0 = time.monotonic()
    s = harness.connect(t)
    first = s.recv(4096)
    assert time.monotonic() - t0 < 1.0 and first, 'quote took %.2f s' % (time.monotonic() - t0)
    s.close()
    # A client that talks first, a little or a lot, gets the same quote.
    for junk in (b'\r\n', b'GET / HTTP/1.0\r\n\r\n', bytes(range(256)) * 400):
        t0 = time.monotonic()
        got = tcp_quote(t, send=junk)
        assert got == want, 'after %d bytes of input got %r' % (len(junk), got[:60])
        assert time.monotonic() - t0 < 2.0
    # A client that keeps sending and never closes still gets quote + FIN.
    s = harness.connect(t)
    s.sendall(b'x' * 1000)
    got = harness.recv_until_eof(s, limit=4096, deadline=time.monotonic() + 3)
    assert got == want
    s.close()
    d.stop()


def _key_line(text):
    """The INI line of the quotes key: where the daemon reports its errors."""
    return next(i + 1 for i, l in enumerate(text.split('\n')) if l.startswith('quotes = '))


def _ini_with_line(ctx, path):
    text = ctx.ini(services(path))
    return write(ctx, 'ringd.ini', text.encode()), _key_line(text)


def _bad_files(ctx):
    """(name, path, [quotes-file line or None, text that must follow])"""
    long_quote = b'ok\n%\n' + b'a' * 509 + b'\n%\n\nx\n' + b'b' * 600 + b'\n%\nfine\n'
    utf8 = b'good\n%\nA caf\xc3\xa9 quote.\n%\ngood too\n'
    return [
        ('missing', os.path.join(ctx.tempdir(), 'nonexistent'),
         [(None, 'cannot open: No such file or directory')]),
        ('empty', write(ctx, 'empty', b''), [(None, 'no quotes')]),
        ('separators only', write(ctx, 'seps', b'%\n%\n\n%\n'), [(None, 'no quotes')]),
        ('over-long', write(ctx, 'long', long_quote),
         [(6, 'quote is 605 bytes as sent (limit 511)')]),
        ('non-ASCII', write(ctx, 'utf8', utf8), [(3, 'byte 0xc3 is not printable ASCII')]),
        ('several', write(ctx, 'several', utf8 + b'%\n' + long_quote + b'%\ntab\there\n'),
         [(3, 'byte 0xc3'), (12, 'quote is 605 bytes'), (17, 'byte 0x09')]),
    ]


def _expect_errors(out, ini, key_line, path, errors, name):
    for qline, text in errors:
        where = path if qline is None else '%s:%d' % (path, qline)
        want = '%s:%d: [qotd] quotes: %s: %s' % (ini, key_line, where, text)
        assert want in out, '%s: expected %r in:\n%s' % (name, want, out)


def test_bad_quotes_files_check(ctx):
    for name, path, errors in _bad_files(ctx):
        ini, key_line = _ini_with_line(ctx, path)
        r = ctx.run(['-c', ini, '-t'])
        out = r.stdout + r.stderr
        assert r.returncode == 1, '%s: -t exited %d:\n%s' % (name, r.returncode, out)
        _expect_errors(out, ini, key_line, path, errors, name)
        assert out.count(': [qotd] quotes: ') == len(errors), '%s:\n%s' % (name, out)


def test_bad_quotes_files_start(ctx):
    for name, path, errors in _bad_files(ctx):
        text = ctx.ini(services(path))
        d = ctx.daemon(ini=text, expect_ready=False)
        rc = d.run_to_exit()
        assert rc == 1, '%s: ringd exited %s:\n%s' % (name, rc, d.stderr())
        _expect_errors(d.stderr(), d.conf, _key_line(text), path, errors, name)


def test_relative_quotes_path(ctx):
    """A relative quotes path is relative to the INI file's directory."""
    d = ctx.daemon(services('quotes.txt', listen='tcp://127.0.0.1:0'), start=False)
    with open(os.path.join(d.dir, 'quotes.txt'), 'wb') as f:
        f.write(b'relative\n')
    d.start()
    assert tcp_quote(d.addr('tcp', 'qotd')) == b'relative\r\n'
    d.stop()


if __name__ == '__main__':
    harness.main([
        test_shipped_quotes_file,
        test_default_quotes_from_build_tree,
        test_tcp_nc_one_quote_then_close,
        test_tcp_socat_one_quote,
        test_udp_quote,
        test_daily_same_everywhere,
        test_sequential_and_random_from_file,
        test_input_ignored_and_not_delayed,
        test_bad_quotes_files_check,
        test_bad_quotes_files_start,
        test_relative_quotes_path,
    ])
