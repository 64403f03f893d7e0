"""Clients for tests/systemd/run.sh, run from the host inside the
container's network namespace (nsenter -n), so the image needs no Python.

    client.py echo HOST PORT SIZE...      each payload comes back whole
    client.py http HOST PORT PATH STATUS [BODY]   status (and body text)
    client.py hold HOST PORT SECONDS      keep PORT bound and listening
    client.py idle HOST PORT              a connection that waits for EOF
    client.py hang HOST PORT              send "hang" and leave
    client.py hostpid LEADER PID          the host PID of container PID
    client.py same-socket PORT HOSTPID... one listening socket, held by all

Exit 0 when the check holds, 1 with a one-line reason on stderr when it
does not. Every socket operation has a timeout.
"""

import inspect
import os
import re
import socket
import sys
import time

TIMEOUT = 5.0


class Failed(Exception):
    pass


def connect(host, port):
    try:
        return socket.create_connection((host, int(port)), timeout=TIMEOUT)
    except OSError as e:
        raise Failed('connect %s port %s: %s' % (host, port, e))


def recv_exactly(s, n):
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(min(65536, n - len(got)))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def cmd_echo(host, port, *sizes):
    s = connect(host, port)
    with s:
        for size in map(int, sizes):
            # A pattern that changes every byte finds a reordered or
            # repeated segment, which a constant payload would hide.
            data = bytes((i * 7 + size) & 0xff for i in range(size))
            s.sendall(data)
            back = recv_exactly(s, size)
            if back != data:
                raise Failed('echo %s port %s: sent %d bytes, got %d back%s'
                             % (host, port, size, len(back),
                                '' if len(back) != size else ' (different)'))
    print('echo %s port %s: %s bytes came back' % (host, port, '+'.join(sizes)))


def cmd_http(host, port, path, status, body=None):
    s = connect(host, port)
    with s:
        s.sendall(('GET %s HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n'
                   % path).encode())
        resp = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
    head, _, text = bytes(resp).partition(b'\r\n\r\n')
    line = head.split(b'\r\n', 1)[0].decode(errors='replace')
    if not re.fullmatch(r'HTTP/1\.1 %s( .*)?' % re.escape(status), line):
        raise Failed('GET %s: status line %r, want %s' % (path, line, status))
    if body is not None and body.encode() not in text:
        raise Failed('GET %s: body %r lacks %r' % (path, text[:80], body))
    print('GET %s: %s' % (path, line))


def cmd_hold(host, port, seconds):
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    # Checks before this one leave connections in TIME_WAIT on the port
    # (daytime closes first, so the server's end waits); they must not
    # stop the bind. A listener on the port still does.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((host, int(port)))
        s.listen()
    except OSError as e:
        raise Failed('hold %s port %s: %s' % (host, port, e))
    print('holding %s port %s' % (host, port), flush=True)
    time.sleep(float(seconds))


def cmd_idle(host, port):
    """Proves the connection was served, then reports how the daemon
    ended it: EOF is a drain, a reset is not."""
    s = connect(host, port)
    with s:
        s.sendall(b'idle\n')
        if recv_exactly(s, 5) != b'idle\n':
            raise Failed('idle connection: no echo')
        print('idle connection open', flush=True)
        s.settimeout(120)
        start = time.monotonic()
        try:
            extra = s.recv(1)
        except OSError as e:
            raise Failed('idle connection ended with %s' % e)
        if extra:
            raise Failed('idle connection: unexpected byte %r' % extra)
        print('idle connection: EOF after %.1f s'
              % (time.monotonic() - start))


def cmd_hang(host, port):
    s = connect(host, port)
    s.sendall(b'hang\n')
    s.close()
    print('sent "hang" to %s port %s' % (host, port))


def nspid_of(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('NSpid:'):
                return [int(x) for x in line.split()[1:]]
    return []


def cmd_hostpid(leader, pid):
    ns = os.readlink('/proc/%s/ns/pid' % leader)
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            if (os.readlink('/proc/%s/ns/pid' % entry) == ns and
                    nspid_of(int(entry))[-1] == int(pid)):
                print(entry)
                return
        except (OSError, IndexError):
            continue
    raise Failed('no host process is PID %s in the container of %s'
                 % (pid, leader))


def listening_inodes(port):
    """Inodes of TCP sockets listening on PORT in this network namespace."""
    out = set()
    for name in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(name) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == '0A' and int(local.rsplit(':', 1)[1], 16) == int(port):
                    out.add(inode)
    return out


def socket_inodes(pid):
    out = set()
    fd_dir = '/proc/%s/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            m = re.fullmatch(r'socket:\[(\d+)\]', os.readlink(fd_dir + '/' + fd))
        except OSError:
            continue
        if m:
            out.add(m.group(1))
    return out


def cmd_same_socket(port, *pids):
    listening = listening_inodes(port)
    if not listening:
        raise Failed('nothing listens on port %s' % port)
    shared = set(listening)
    for pid in pids:
        shared &= socket_inodes(pid)
    if not shared:
        raise Failed('port %s: no listening socket is held by all of %s'
                     % (port, ' '.join(pids)))
    print('port %s: socket %s held by %s' % (port, ','.join(sorted(shared)),
                                            ' and '.join(pids)))


COMMANDS = {
    'echo': cmd_echo, 'http': cmd_http, 'hold': cmd_hold, 'idle': cmd_idle,
    'hang': cmd_hang, 'hostpid': cmd_hostpid, 'same-socket': cmd_same_socket,
}


def main(argv):
    fn = COMMANDS.get(argv[1]) if len(argv) > 1 else None
    try:
        if fn is None:
            raise TypeError('no such command')
        inspect.signature(fn).bind(*argv[2:])
    except TypeError as e:
        print('%s\n%s' % (e, __doc__), file=sys.stderr)
        return 2
    try:
        fn(*argv[2:])
    except (Failed, OSError) as e:
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
