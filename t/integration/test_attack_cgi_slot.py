"""Requests queued for a cgi slot (max_processes) while a script exits:
clients that go away, a queue of many, and a stop with requests queued
(config.md cgi; a sanitizer build checks the memory)."""

import socket
import threading
import time

from cgiutil import cgi_root, config, script  # noqa: F401


LINGER = """
    #!/bin/sh
    printf 'Content-Type: text/plain\\n\\nok'
    exec >&- 2>&-
    sleep 0.4
"""


def send(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
               % path).encode())
    return s


def read_all(s):
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    except OSError:
        pass
    s.close()
    return data


def test_queued_clients_that_go_away_and_many_waiting(eddy, cgi_root):
    script(cgi_root, "linger.sh", LINGER)
    e = eddy(config(cgi_root, cgi="max_processes: 1"))
    assert e.get("/cgi-bin/linger.sh", timeout=10).status == 200
    # The script is exiting: these queue; every other one leaves.
    socks = [send(e.port, "/cgi-bin/linger.sh") for _ in range(16)]
    time.sleep(0.1)
    for s in socks[::2]:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    out = [read_all(s) for s in socks[1::2]]
    for d in out:
        assert d.startswith(b"HTTP/1.1 200") or d.startswith(
            b"HTTP/1.1 503"), d[:80]
    assert any(d.startswith(b"HTTP/1.1 200") for d in out)
    time.sleep(0.6)
    assert e.get("/cgi-bin/linger.sh", timeout=10).status == 200


def test_stop_with_requests_queued(eddy, cgi_root):
    script(cgi_root, "linger.sh", LINGER)
    e = eddy(config(cgi_root, cgi="max_processes: 1"))
    assert e.get("/cgi-bin/linger.sh", timeout=10).status == 200
    socks = [send(e.port, "/cgi-bin/linger.sh") for _ in range(6)]
    time.sleep(0.1)
    res = []
    t = threading.Thread(target=lambda: res.extend(read_all(s)
                                                   for s in socks))
    t.start()
    e.stop()
    t.join(10)


def test_h2_streams_reset_while_queued(eddy, cgi_root):
    from h2util import H2
    script(cgi_root, "linger.sh", LINGER)
    e = eddy(config(cgi_root, cgi="max_processes: 1").replace(
        "listen: 127.0.0.1:{port}",
        'listen: [{address: "127.0.0.1:{port}", http2: true}]'))
    c = H2(e.port)
    try:
        sid = c.request("/cgi-bin/linger.sh")
        r = c.wait(sid, timeout=5)
        assert r.status == 200
        # The first script is exiting: these queue, then most are reset
        # (the first in the queue among them).
        sids = [c.request("/cgi-bin/linger.sh") for _ in range(10)]
        c.recv(0.05)
        for s in sids[:-2]:
            c.reset(s)
        for s in sids[-2:]:
            r = c.wait(s, timeout=5)
            assert r.status in (200, 503), r
        assert c.wait(sids[-2], timeout=5).status == 200
    finally:
        c.close()
    time.sleep(0.5)
    assert e.get("/cgi-bin/linger.sh", timeout=10).status == 200


def test_a_freed_slot_reaches_a_waiter_that_fits(eddy, cgi_root):
    # Two locations share the worker's processes: /cgi-bin/ allows 1,
    # /wide/ allows 3. With 3 running (2 busy, 1 exiting), a /cgi-bin/
    # request then a /wide/ one wait; the exit frees a slot only the
    # /wide/ request may use: it runs at once, not a 503 a second later.
    script(cgi_root, "linger.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nok'
        exec >&- 2>&-
        sleep 0.5
    """)
    script(cgi_root, "busy.sh", """
        #!/bin/sh
        sleep 2.5
        printf 'Content-Type: text/plain\\n\\nbusy'
    """)
    script(cgi_root, "hi.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nhi'
    """)
    e = eddy(config(cgi_root, cgi="max_processes: 1", locations="""
        /wide/:
          cgi:
            alias: %s
            max_processes: 3
    """ % cgi_root))
    busy = [send(e.port, "/wide/busy.sh") for _ in range(2)]
    time.sleep(0.3)
    assert e.get("/wide/linger.sh", timeout=10).status == 200
    narrow = send(e.port, "/cgi-bin/hi.sh")
    time.sleep(0.05)
    t0 = time.monotonic()
    wide = send(e.port, "/wide/hi.sh")
    got = read_all(wide)
    took = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 200"), got[:60]
    assert got.endswith(b"\r\nhi\r\n0\r\n\r\n"), got
    assert took < 0.8, took
    assert read_all(narrow).startswith(b"HTTP/1.1 503")
    for s in busy:
        assert b"busy" in read_all(s)
