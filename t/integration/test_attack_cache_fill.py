"""Attacks on the streaming miss (cache.md, Misses and request
collapsing): a miss's fetch is detached from the client that started
it, so it must hold nothing of that client once it went, and must not
go on for nobody."""

import os
import re
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
