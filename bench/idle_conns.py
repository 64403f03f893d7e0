#!/usr/bin/env python3
"""Holds N idle HTTP keep-alive connections for bench/http.sh's memory figure.

Talks to its caller over stdin/stdout so the caller can read the server's
memory at the two moments that matter:
  1. opens --warmup connections, one GET each, closes them (the server's
     first-use allocations happen here, not in the measured step);
     prints "warm" and waits for a line on stdin;
  2. opens --conns connections, each sends one GET and reads its whole
     response (status 200, Content-Length framing), then stays open and
     idle; prints "open N" and waits for a line on stdin (or EOF, or
     --hold seconds);
  3. checks that the server closed none of them (prints "idle N still
     open"), closes everything and exits 0. Any failure, or a connection
     the server closed while it should have been idle, exits 1.

usage: idle_conns.py --port P [--host 127.0.0.1] [--conns 10000]
                     [--path /healthz] [--warmup 100] [--hold 120]"""

import argparse
import resource
import select
import socket
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError) as e:
            sys.exit(f"idle_conns: RLIMIT_NOFILE {soft}/{hard} < {need} and "
                     f"cannot be raised: {e}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def one_request(sock, request):
    """Sends the request, reads exactly one response; raises on anything
    but a 200 with Content-Length framing."""
    sock.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("server closed before the response head ended")
        buf += chunk
        if len(buf) > 65536:
            raise OSError("response head too long")
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        raise OSError(f"status line {lines[0]!r}")
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"connection" and b"close" in value.lower():
            raise OSError("the server announced Connection: close")
    if length is None:
        raise OSError("response without Content-Length")
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("server closed in the middle of the body")
        body += chunk
    if len(body) != length:
        raise OSError(f"{len(body) - length} bytes beyond Content-Length")


def connect(addr, request):
    sock = socket.create_connection(addr, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    one_request(sock, request)
    return sock


def wait_line(hold):
    ready, _, _ = select.select([sys.stdin], [], [], hold)
    if ready:
        sys.stdin.readline()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--hold", type=float, default=120.0)
    args = ap.parse_args()
    raise_nofile(args.conns + 64)
    addr = (args.host, args.port)
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}\r\n\r\n").encode()

    socks = []
    try:
        for _ in range(args.warmup):
            connect(addr, request).close()
        print("warm", flush=True)
        wait_line(args.hold)
        t0 = time.monotonic()
        for i in range(args.conns):
            socks.append(connect(addr, request))
        print(f"open {len(socks)} in {time.monotonic() - t0:.2f} s", flush=True)
        wait_line(args.hold)
        poller = select.poll()
        for s in socks:
            poller.register(s, select.POLLIN)
        closed = len(poller.poll(0))
        if closed:
            sys.exit(f"idle_conns: the server closed or wrote to {closed} of "
                     f"{len(socks)} idle connections")
        print(f"idle {len(socks)} still open", flush=True)
    except OSError as e:
        print(f"idle_conns: connection {len(socks) + 1}: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    main()
