#!/usr/bin/env python3
"""Privileges when ringd is started as root outside systemd: user = drops
to that user and its own groups after binding, with no capability left and
no_new_privs set, in every thread; without user = a warning names the key.
Read from /proc/PID/task/TID/status, as the kernel sees it."""

import os
import pwd

import harness

WARNING = 'ringd: running as root; set user = in [ringd] to drop to that user after binding'


def task_status(pid):
    """{tid: {field: value}} for every thread of pid."""
    out = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        fields = {}
        with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
            for line in f:
                k, _, v = line.partition(':')
                fields[k] = v.strip()
        out[tid] = fields
    return out


def needs_root():
    if os.geteuid() != 0:
        raise harness.Skip('needs root: user = applies only when started as root')


def echo_works(d):
    data = harness.payload(5000, seed=3)
    harness.assert_same(harness.echo_roundtrip(d.addr('tcp'), data), data, 'echo')


def test_user_drop_keeps_nothing(ctx):
    """Ids, groups, capabilities and no_new_privs after the drop. CapBnd
    is not asserted: ringd leaves the bounding set alone, as with no
    capability held and no_new_privs set no exec can use it."""
    needs_root()
    nobody = pwd.getpwnam('nobody')
    groups = sorted(str(g) for g in os.getgrouplist('nobody', nobody.pw_gid))
    d = ctx.daemon(ringd={'user': 'nobody'}, drops_privileges=True)
    echo_works(d)
    tasks = task_status(d.target_pid())
    assert len(tasks) >= 3, 'expected main and 2 workers: %s' % list(tasks)
    for tid, st in tasks.items():
        assert st['Uid'].split() == [str(nobody.pw_uid)] * 4, (tid, st['Uid'])
        assert st['Gid'].split() == [str(nobody.pw_gid)] * 4, (tid, st['Gid'])
        assert sorted(st['Groups'].split()) == groups, (tid, st['Groups'], groups)
        for cap in ('CapInh', 'CapPrm', 'CapEff', 'CapAmb'):
            assert int(st[cap], 16) == 0, (tid, cap, st[cap])
        assert st['NoNewPrivs'] == '1', (tid, st['NoNewPrivs'])
    err = d.stop()
    assert 'ringd: running as user user=nobody uid=%d gid=%d' % (nobody.pw_uid, nobody.pw_gid) \
        in err, err
    assert WARNING not in err, err


def test_root_without_user_warns(ctx):
    """Root without user = keeps root, and says so once, at warning level,
    naming the key that stops it."""
    needs_root()
    d = ctx.daemon()
    echo_works(d)
    st = task_status(d.target_pid())[str(d.target_pid())]
    assert st['Uid'].split()[1] == '0', st['Uid']
    err = d.stop()
    lines = [l for l in err.splitlines() if WARNING in l]
    assert len(lines) == 1, err
    assert lines[0].startswith('warning: '), lines[0]


def test_not_root_no_warning(ctx):
    """Nothing to warn about when ringd is not root to begin with (under
    systemd's DynamicUser=, say)."""
    needs_root()

    def become_nobody():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    d = ctx.daemon(preexec=become_nobody, drops_privileges=True)
    echo_works(d)
    err = d.stop()
    assert 'running as root' not in err, err


def test_unfiltered_stop_says_so_once(ctx):
    """A process without CAP_NET_ADMIN may not attach the SYN filter a
    stop puts on each TCP listener (this project's kernels refuse it
    with EPERM). That is one line per stop, at notice level, not one
    warning per listener and worker: here two workers, three TCP
    listeners, six sockets."""
    needs_root()
    d = ctx.daemon(services={
        'echo': {'listen': 'tcp://127.0.0.1:0, tcp://127.0.0.1:0'},
        'web': {'plugin': 'http', 'listen': 'tcp://127.0.0.1:0'}},
        ringd={'user': 'nobody'}, drops_privileges=True)
    echo_works(d)
    err = d.stop()
    lines = [l for l in err.splitlines() if 'cannot filter SYNs' in l]
    assert len(lines) <= 1, err
    for l in lines:
        if 'Operation not permitted' in l:
            assert l.startswith('notice: ') and 'ringd.socket' in l, l
        else:
            assert l.startswith('warning: '), l
    print('  %s' % (lines[0] if lines else 'the kernel let the filter on'))


if __name__ == '__main__':
    harness.main([
        test_user_drop_keeps_nothing,
        test_root_without_user_warns,
        test_not_root_no_warning,
        test_unfiltered_stop_says_so_once,
    ])
