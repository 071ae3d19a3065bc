"""A 304 that revalidates an entry updates it (cache.md, Freshness and
stale responses; RFC 9111 4.3.4 and 3.2): the 304's fields replace the
stored ones of their names, its freshness gives the new lifetime, its
validators answer the next conditional requests; Content-Length and
Set-Cookie never change the entry. Every origin counts its requests."""

import glob
import os
import subprocess
import sys
import threading
import time

from proxy_backend import Backend, response

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m, max_entry_size: 16m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main%s}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""

BODY = b"abcdefghij" * 10


def start(eddy, b, proxy=""):
    return eddy((CONF % proxy).replace("@B@", str(b.port)))


def origin(first, then):
    """200 with the fields first, then 304 with the fields then to any
    conditional request."""
    def handler(req, conn):
        if req.header("If-None-Match") or req.header("If-Modified-Since"):
            return response(304, b"", then, length=False)
        return response(200, BODY, first)
    return handler


def test_304_updates_the_stored_head_and_lifetime(eddy):
    h = origin([("Cache-Control", "max-age=1"), ("X-Version", "1"),
                ("ETag", '"a"'), ("Content-Type", "text/plain")],
               [("X-Version", "2"), ("Cache-Control", "max-age=60"),
                ("ETag", '"a"')])
    with Backend(h) as b:
        e = start(eddy, b)
        r = e.get("/u")
        assert r.header("X-Cache") == "MISS"
        assert r.header("X-Version") == "1"
        time.sleep(2.2)
        r = e.get("/u")
        assert r.status == 200 and r.body == BODY
        assert r.header("X-Cache") == "REVALIDATED"
        assert r.header("X-Version") == "2"
        assert r.header("Cache-Status") == \
            "eddy; fwd=stale; fwd-status=304; ttl=60"
        assert b.requests[1].header("If-None-Match") == '"a"'
        # The next request: a hit with the new head and lifetime.
        r = e.get("/u")
        assert r.header("X-Cache") == "HIT"
        assert r.header("X-Version") == "2"
        assert r.header("Cache-Control") == "max-age=60"
        assert r.header("Content-Type") == "text/plain"
        assert r.body == BODY and r.header("Content-Length") == "100"
        ttl = int(r.header("Cache-Status").split("ttl=")[1])
        assert 58 <= ttl <= 60, ttl
        assert len(b.requests) == 2
        # Rewritten in place of the old file: one entry, no temp file.
        files = glob.glob(os.path.join(str(e.prefix), "cache", "main",
                                       "*", "*", "*"))
        assert len(files) == 1
        assert os.listdir(os.path.join(str(e.prefix), "cache", "main",
                                       ".tmp")) == []
        # A restart reads the updated file.
        e.stop()
        e.start()
        r = e.get("/u")
        assert r.header("X-Cache") == "HIT"
        assert r.header("X-Version") == "2"
        assert len(b.requests) == 2


def test_304_with_a_new_etag_changes_what_matches(eddy):
    h = origin([("Cache-Control", "max-age=1"), ("ETag", '"a"')],
               [("Cache-Control", "max-age=60"), ("ETag", '"b"')])
    with Backend(h) as b:
        e = start(eddy, b)
        e.get("/t")
        r = e.get("/t", headers={"If-None-Match": '"a"'})
        assert r.status == 304 and r.header("X-Cache") == "HIT"
        time.sleep(2.2)
        r = e.get("/t")
        assert r.header("X-Cache") == "REVALIDATED"
        assert r.header("ETag") == '"b"'
        r = e.get("/t", headers={"If-None-Match": '"a"'})
        assert r.status == 200 and r.body == BODY
        assert r.header("X-Cache") == "HIT" and r.header("ETag") == '"b"'
        r = e.get("/t", headers={"If-None-Match": '"b"'})
        assert r.status == 304 and r.header("X-Cache") == "HIT"
        assert len(b.requests) == 2


def test_304_without_cache_control_keeps_the_stored_rule(eddy):
    # The stored max-age=1 stays: the 304 makes the entry fresh for one
    # more second, from the 304, then it is revalidated again.
    h = origin([("Cache-Control", "max-age=1"), ("ETag", '"a"'),
                ("X-Version", "1")],
               [("ETag", '"a"'), ("X-Version", "2")])
    with Backend(h) as b:
        e = start(eddy, b)
        e.get("/k")
        time.sleep(2.2)
        r = e.get("/k")
        assert r.header("X-Cache") == "REVALIDATED"
        assert r.header("Cache-Status") == \
            "eddy; fwd=stale; fwd-status=304; ttl=1"
        assert r.header("X-Version") == "2"
        assert r.header("Cache-Control") == "max-age=1"
        time.sleep(2.2)
        assert e.get("/k").header("X-Cache") == "REVALIDATED"
        assert len(b.requests) == 3


def test_304_without_cache_control_keeps_cache_valid(eddy):
    h = origin([("ETag", '"a"')], [("ETag", '"a"'), ("X-Version", "2")])
    with Backend(h) as b:
        e = start(eddy, b, ", cache_valid: {200: 1s}")
        e.get("/v")
        time.sleep(2.2)
        r = e.get("/v")
        assert r.header("X-Cache") == "REVALIDATED"
        assert r.header("Cache-Status").endswith("ttl=1")
        assert r.header("X-Version") == "2"


def test_304_content_length_and_set_cookie_never_change_the_entry(eddy):
    h = origin([("Cache-Control", "max-age=1"), ("ETag", '"a"')],
               [("Cache-Control", "max-age=60"), ("ETag", '"a"'),
                ("Content-Length", "5"), ("Set-Cookie", "s=1"),
                ("Content-Encoding", "gzip"), ("X-Hop", "x"),
                ("Connection", "X-Hop")])
    with Backend(h) as b:
        e = start(eddy, b)
        e.get("/c")
        time.sleep(2.2)
        r = e.get("/c")
        assert r.header("X-Cache") == "REVALIDATED"
        for r in (r, e.get("/c")):
            assert r.status == 200 and r.body == BODY
            assert r.header("Content-Length") == "100"
            assert r.header("Set-Cookie") is None
            assert r.header("Content-Encoding") is None
            assert r.header("X-Hop") is None
        assert r.header("X-Cache") == "HIT"
        assert len(b.requests) == 2


def test_304_for_a_big_entry(eddy):
    big = os.urandom(10 << 20)
    first = [("Cache-Control", "max-age=1"), ("ETag", '"big"'),
             ("X-Version", "1")]
    then = [("Cache-Control", "max-age=60"), ("ETag", '"big"'),
            ("X-Version", "2")]

    def handler(req, conn):
        if req.header("If-None-Match"):
            return response(304, b"", then, length=False)
        return response(200, big, first)

    with Backend(handler) as b:
        e = start(eddy, b)
        assert e.get("/big").body == big
        time.sleep(2.2)
        t = time.monotonic()
        r = e.get("/big")
        took = time.monotonic() - t
        assert r.header("X-Cache") == "REVALIDATED" and r.body == big
        assert took < 2, took
        r = e.get("/big")
        assert r.header("X-Cache") == "HIT" and r.body == big
        assert r.header("X-Version") == "2"
        assert len(b.requests) == 2


def test_304_after_a_newer_store_does_not_put_the_old_body_back(eddy):
    """A revalidation whose 304 comes after another request stored a new
    response for the key (a cache_bypass request here) leaves the new
    entry in place: the 304 refreshes only the response it answered."""
    state = {"v": 1}

    def handler(req, conn):
        if req.header("If-None-Match"):
            time.sleep(1.0)
            return response(304, b"", [("Cache-Control", "max-age=60"),
                                       ("ETag", '"v1"')], length=False)
        v = state["v"]
        return response(200, b"body-v%d" % v,
                        [("Cache-Control", "max-age=%d" % (1 if v == 1
                                                           else 60)),
                         ("ETag", '"v%d"' % v)])

    with Backend(handler) as b:
        e = start(eddy, b, proxy=", cache_bypass: [$http_x_nocache]")
        assert e.get("/r").body == b"body-v1"
        time.sleep(2.2)
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", e.get("/r")))
        t.start()
        time.sleep(0.3)
        state["v"] = 2
        r = e.get("/r", headers={"X-Nocache": "1"})
        assert r.body == b"body-v2"
        t.join(10)
        # The revalidating client gets a whole, consistent response:
        # the one its 304 refreshed, or the newer one now stored.
        got = out["r"]
        assert got.status == 200, got.status
        assert got.body in (b"body-v1", b"body-v2")
        assert got.header("ETag") == '"%s"' % got.body.decode()[5:], \
            (got.headers, got.body)
        r = e.get("/r")
        assert r.header("X-Cache") == "HIT"
        assert r.body == b"body-v2"


PINGER = """
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
while True:
    s.sendall(b"GET /ping HTTP/1.1\\r\\nHost: p\\r\\n\\r\\n")
    got = b""
    while not got.endswith(b"pong"):
        got += s.recv(4096)
    print(time.monotonic(), flush=True)
    time.sleep(0.0005)
"""

LARGE_CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 512m,
             max_entry_size: 128m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
          /ping:
            return: {status: 200, body: "pong"}
"""


def test_304_of_a_large_entry_is_copied_in_steps(eddy):
    """The body of a 24 MiB entry is copied into its new file a step per
    loop turn (8 MiB): the worker answers other requests while it copies,
    the client then gets the whole body with the new head, and the entry
    is replaced whole."""
    import hashlib
    import socket
    big = os.urandom(24 << 20)
    sent = {}

    def handler(req, conn):
        if req.header("If-None-Match"):
            sent["304"] = time.monotonic()
            return response(304, b"", [("Cache-Control", "max-age=60"),
                                       ("ETag", '"g"'), ("X-Version", "2")],
                            length=False)
        return response(200, big, [("Cache-Control", "max-age=1"),
                                   ("ETag", '"g"'), ("X-Version", "1")])

    with Backend(handler) as b:
        e = eddy(LARGE_CONF.replace("@B@", str(b.port)))
        r = e.get("/big", headers={"Host": "x"}, timeout=30)
        assert r.header("X-Cache") == "MISS" and len(r.body) == len(big)
        time.sleep(2.2)
        # Another process asks for /ping all along: its answers carry
        # the monotonic clock (shared by processes), so the ones that
        # came while the worker copied the body show.
        pinger = subprocess.Popen(
            [sys.executable, "-c", PINGER, str(e.port)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        s = socket.create_connection(("127.0.0.1", e.port), timeout=30)
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head_at = time.monotonic()
        time.sleep(0.05)
        pinger.kill()
        pongs = [float(x) for x in pinger.communicate(timeout=10)[0].split()]
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"X-Cache: REVALIDATED" in head and b"X-Version: 2" in head
        while len(body) < len(big):
            chunk = s.recv(1 << 20)
            assert chunk
            body += chunk
        s.close()
        assert hashlib.sha256(body).digest() == hashlib.sha256(big).digest()
        during = [p for p in pongs if sent["304"] + 0.003 < p < head_at]
        assert during, (head_at - sent["304"], len(pongs))
        r = e.get("/big", headers={"Host": "x"}, timeout=30)
        assert r.header("X-Cache") == "HIT" and r.header("X-Version") == "2"
        assert len(r.body) == len(big) and r.body == big
        assert len(b.requests) == 2
        files = glob.glob(os.path.join(str(e.prefix), "cache", "main",
                                       "*", "*", "*"))
        assert len(files) == 1
        assert os.listdir(os.path.join(str(e.prefix), "cache", "main",
                                       ".tmp")) == []
