"""Attacks on the streaming miss (cache.md, Misses and request
collapsing): a miss's fetch is detached from the client that started
it, so it must hold nothing of that client once it went, and must not
go on for nobody."""

import os
import re
import signal
import socket
import threading
import time

from conftest import wait_for
from proxy_backend import Backend, TAKEN

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: @MAX@,
             max_entry_size: 64k}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main,
                    read_timeout: 1s}
"""


def start(eddy, b, max_size="64m"):
    return eddy(CONF.replace("@B@", str(b.port)).replace("@MAX@", max_size))


def hit_and_run(port, path, read=0):
    """A client that asks for path, reads a few bytes (read > 0), goes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: a.example\r\n\r\n" % path.encode())
    if read:
        s.recv(read)
    s.close()


def test_a_fetch_whose_client_went_logs_its_own_request_line(eddy):
    # The fetch outlives its client, whose buffers are reused by the
    # next clients: its log lines still name its own request, never
    # bytes of freed memory or of another client's request.
    def stalls(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n"
                     b"Cache-Control: max-age=60\r\n\r\n" + b"x" * 1000)
        time.sleep(0.3)                # the client went meanwhile
        conn.sendall(b"y" * 100000)
        time.sleep(1.5)                # past read_timeout: eddy logs
        return TAKEN

    with Backend(stalls) as b:
        e = start(eddy, b)
        hit_and_run(e.port, "/first-client-gone", read=100)
        for i in range(20):
            hit_and_run(e.port, "/other-%d-%s" % (i, "z" * 40), read=100)
        assert wait_for(lambda: "/first-client-gone" in "".join(
            re.findall(r"upstream: \"[^\"]*\"", e.all_logs())), timeout=5)
        time.sleep(0.5)
        lines = [line for line in e.all_logs().splitlines()
                 if 'upstream: "http://127.0.0.1:%d/first-client-gone"'
                 % b.port in line]
        assert lines
        for line in lines:
            assert 'request: "GET /first-client-gone HTTP/1.1"' in line, \
                line


def endless(total=64 * 1024 * 1024):
    """A cacheable chunked origin of total bytes; sent[target] is how
    many it sent, closed[target] when eddy closed on it."""
    sent, closed = {}, {}

    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     b"Cache-Control: max-age=60\r\n\r\n")
        piece = b"4000\r\n" + b"x" * 16384 + b"\r\n"
        n = 0
        try:
            while n < total:
                conn.sendall(piece)
                n += 16384
                sent[req.target] = n
                time.sleep(0.002)
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            closed[req.target] = time.monotonic()
        return TAKEN

    return handler, sent, closed


def test_a_fill_past_max_entry_size_stops_when_nobody_follows_it(eddy):
    # Past max_entry_size the fill is not kept: with its client gone and
    # no waiter streaming it, reading on (up to max_size on disk, an
    # upstream connection held) serves nobody.
    handler, sent, closed = endless()
    with Backend(handler) as b:
        e = start(eddy, b, max_size="32m")
        hit_and_run(e.port, "/nobody", read=1000)
        assert wait_for(lambda: "/nobody" in closed, timeout=5), \
            "the fetch read on for nobody: %d bytes" % sent.get("/nobody")
        assert sent["/nobody"] < 8 * 1024 * 1024
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        assert wait_for(lambda: os.listdir(tmp) == [], timeout=5)


def test_a_fill_past_max_entry_size_goes_on_for_a_waiter(eddy):
    # The same fill with a waiter streaming it: its client's going does
    # not stop it, the waiter gets the whole body.
    rest = 2 * 1024 * 1024

    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     b"Cache-Control: max-age=60\r\n\r\n200\r\n"
                     + b"a" * 512 + b"\r\n")
        time.sleep(0.6)             # within the waiter's read_timeout
        for _ in range(rest // 16384):
            conn.sendall(b"4000\r\n" + b"b" * 16384 + b"\r\n")
        conn.sendall(b"0\r\n\r\n")
        return TAKEN

    with Backend(handler) as b:
        e = start(eddy, b)
        first = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        first.sendall(b"GET /shared HTTP/1.1\r\nHost: a.example\r\n\r\n")
        first.recv(100)
        waiter = socket.create_connection(("127.0.0.1", e.port), timeout=10)
        waiter.sendall(b"GET /shared HTTP/1.1\r\nHost: a.example\r\n"
                       b"Connection: close\r\n\r\n")
        time.sleep(0.3)
        first.close()
        data = b""
        while True:
            got = waiter.recv(1 << 16)
            if not got:
                break
            data += got
        waiter.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"collapsed" in head
        assert body.endswith(b"0\r\n\r\n")
        raw = body
        out = b""
        while True:
            size, _, raw = raw.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out += raw[:n]
            raw = raw[n + 2:]
        assert out == b"a" * 512 + b"b" * rest
        assert len(b.requests) == 1


def test_a_fetch_cut_by_shutdown_timeout_leaves_no_temp_file(eddy):
    # QUIT waits for the fetches under way (their upstream connections
    # count) up to shutdown_timeout; then they end with the worker, as
    # a request cut off does: nothing of them left in .tmp/.
    def trickle(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n"
                     b"Cache-Control: max-age=60\r\n\r\n" + b"x" * 100000)
        try:
            for _ in range(25):
                time.sleep(0.1)
                conn.sendall(b"y" * 100000)
        except OSError:
            pass
        return TAKEN

    with Backend(trickle) as b:
        e = eddy(CONF.replace("@B@", str(b.port)).replace("@MAX@", "64m")
                 .replace("max_entry_size: 64k", "max_entry_size: 8m")
                 .replace("workers: 1", "workers: 1\n    shutdown_timeout: 1s"))
        hit_and_run(e.port, "/left", read=1000)
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        assert wait_for(lambda: os.listdir(tmp) != [], timeout=5)
        time.sleep(0.3)
        t0 = time.monotonic()
        e.signal(signal.SIGQUIT)
        assert e.wait_exit(10) == 0
        assert 0.8 < time.monotonic() - t0 < 5
        assert os.listdir(tmp) == []


def private_file_bytes(pids):
    """Disk (or memory) the workers' private files of responses not
    stored take: their descriptors of unlinked files in .tmp/ (a file
    counted once: its fetch and its client each hold one)."""
    seen = {}
    for pid in pids:
        fds = "/proc/%d/fd" % pid
        for fd in os.listdir(fds):
            try:
                target = os.readlink(os.path.join(fds, fd))
                if "/.tmp/" in target and target.endswith("(deleted)"):
                    st = os.stat(os.path.join(fds, fd))
                    seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
            except OSError:
                pass
    return sum(seen.values())


def test_private_files_of_clients_that_never_read_stay_bounded(eddy):
    # Responses not stored reach their clients through private files
    # the fetch runs ahead into. Clients that never read must not make
    # those files take, together, more than the cache's bound on one
    # response (max_entry_size), beyond what each socket holds (its
    # send buffer is pages of the file) and a short lag.
    body = 64 * 1024 * 1024
    n = 6
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        sndbuf = int(f.read().split()[2])

    def private(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                     b"Cache-Control: no-store\r\n\r\n" % body)
        piece = b"p" * 65536
        try:
            for _ in range(body // 65536):
                conn.sendall(piece)
        except OSError:
            pass
        return TAKEN

    with Backend(private) as b:
        e = eddy(CONF.replace("@B@", str(b.port)).replace("@MAX@", "128m")
                 .replace("max_entry_size: 64k", "max_entry_size: 16m"))
        socks = []
        for i in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", e.port))
            s.sendall(b"GET /dl%d HTTP/1.1\r\nHost: a.example\r\n\r\n" % i)
            socks.append(s)
        try:
            time.sleep(2.0)
            held = private_file_bytes(e.worker_pids())
            bound = 16 * 1024 * 1024 + n * (sndbuf + 1024 * 1024)
            assert held <= bound, "%d MiB in private files (bound %d)" % (
                held >> 20, bound >> 20)
        finally:
            for s in socks:
                s.close()


def test_fills_past_max_entry_size_for_clients_that_never_read(eddy):
    # Chunked responses that turn out too large to store are written on
    # for whoever follows them, up to max_size each: clients that never
    # read must not make them take, together, more than the cache's own
    # bound on one response (max_entry_size) beyond a short lag each.
    handler, sent, closed = endless()
    n = 4
    with open("/proc/sys/net/ipv4/tcp_wmem") as f:
        sndbuf = int(f.read().split()[2])
    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)).replace("@MAX@", "64m")
                 .replace("max_entry_size: 64k", "max_entry_size: 1m")
                 .replace("read_timeout: 1s", "read_timeout: 10s"))
        socks = []
        for i in range(n):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", e.port))
            s.sendall(b"GET /big%d HTTP/1.1\r\nHost: a.example\r\n\r\n" % i)
            socks.append(s)
        try:
            time.sleep(3.0)
            tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
            held = sum(os.stat(os.path.join(tmp, f)).st_blocks * 512
                       for f in os.listdir(tmp))
            bound = 1024 * 1024 + n * (sndbuf + 1024 * 1024)
            assert held <= bound, "%d MiB in temp files (bound %d)" % (
                held >> 20, bound >> 20)
        finally:
            for s in socks:
                s.close()
