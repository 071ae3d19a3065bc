"""Request collapsing (cache.md, cache_lock): one fetch per key across
workers, the others woken when it is stored; a lock timeout; a response
found not storable releases the waiters and stops the queueing."""

import socket
import threading
import time

from proxy_backend import Backend, CLOSE, TAKEN, response

CONF = """
    workers: 2
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main%s}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""


def slow(delay, headers, body=b"slow-body" * 100):
    def handler(req, conn):
        time.sleep(delay)
        return response(200, body, headers)
    return handler


def fire(e, n, path, headers=None):
    """n concurrent GETs; returns their responses (or exceptions)."""
    out = [None] * n

    def one(i):
        try:
            out[i] = e.get(path, headers=headers, timeout=20)
        except Exception as exc:   # noqa: BLE001 - reported below
            out[i] = exc

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    for r in out:
        assert not isinstance(r, Exception) and r is not None, r
    return out


def test_concurrent_misses_make_one_fetch(eddy):
    with Backend(slow(1.0, [("Cache-Control", "max-age=60")])) as b:
        e = eddy((CONF % "").replace("@B@", str(b.port)))
        rs = fire(e, 100, "/cold")
        assert len(b.requests) == 1
        assert {r.status for r in rs} == {200}
        assert {r.body for r in rs} == {b"slow-body" * 100}
        kinds = sorted(r.header("X-Cache") for r in rs)
        assert kinds.count("MISS") == 1 and kinds.count("HIT") == 99
        collapsed = [r for r in rs if r.header("X-Cache") == "HIT"]
        assert {r.header("Cache-Status") for r in collapsed} == \
            {"eddy; fwd=uri-miss; fwd-status=200; collapsed"}
        assert e.get("/cold").header("Cache-Status").startswith("eddy; hit")
        assert len(b.requests) == 1


def test_lock_timeout_goes_upstream_unstored(eddy):
    with Backend(slow(1.5, [("Cache-Control", "max-age=60")])) as b:
        e = eddy((CONF % ", cache_lock: {timeout: 300ms}")
                 .replace("@B@", str(b.port)))
        rs = fire(e, 2, "/lt")
        details = sorted(r.header("Cache-Status") for r in rs)
        assert details == [
            "eddy; fwd=uri-miss; fwd-status=200; detail=lock-timeout",
            "eddy; fwd=uri-miss; fwd-status=200; stored"], details
        assert len(b.requests) == 2


def test_lock_disabled_each_goes_upstream(eddy):
    with Backend(slow(0.5, [("Cache-Control", "max-age=60")])) as b:
        e = eddy((CONF % ", cache_lock: {enabled: false}")
                 .replace("@B@", str(b.port)))
        fire(e, 4, "/nl")
        assert len(b.requests) == 4


def test_not_storable_releases_waiters_and_stops_queueing(eddy):
    with Backend(slow(1.0, [("Cache-Control", "no-store")])) as b:
        e = eddy((CONF % "").replace("@B@", str(b.port)))
        t0 = time.monotonic()
        rs = fire(e, 5, "/ns")
        # Released when the first head came: about two fetch times.
        assert time.monotonic() - t0 < 3.5
        assert len(b.requests) == 5
        assert all(r.header("Cache-Status").endswith("detail=no-store")
                   for r in rs)
        # Hit-for-miss: nobody queues now, all go at once.
        t0 = time.monotonic()
        fire(e, 5, "/ns")
        assert time.monotonic() - t0 < 1.8
        assert len(b.requests) == 10


def read_timed(port, path, head=False):
    """GET (or HEAD) on a new connection: (head bytes, body, time of the
    first body byte)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Connection: close\r\n\r\n"
                  % (b"HEAD" if head else b"GET", path.encode()))
        data, first = b"", None
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if first is None and b"\r\n\r\n" in data \
                    and len(data) > data.index(b"\r\n\r\n") + 4:
                first = time.monotonic()
        head_, _, body = data.partition(b"\r\n\r\n")
        return head_, body, first
    finally:
        s.close()


def test_waiters_stream_the_fetch_as_it_arrives(eddy):
    half = b"a" * 30000
    done = {}

    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 60000\r\n"
                     b"Cache-Control: max-age=60\r\n\r\n" + half)
        time.sleep(1.5)
        done["t"] = time.monotonic()
        conn.sendall(b"b" * 30000)
        return TAKEN

    with Backend(handler) as b:
        e = eddy((CONF % "").replace("@B@", str(b.port)))
        out = [None] * 20

        def one(i):
            out[i] = read_timed(e.port, "/stream")

        ts = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in ts:
            t.start()
            time.sleep(0.01)
        for t in ts:
            t.join(20)
        assert len(b.requests) == 1
        for head, body, first in out:
            assert b" 200 " in head.split(b"\r\n")[0]
            assert body == half + b"b" * 30000
            # First bytes before the upstream finished.
            assert first is not None and first < done["t"], (first, done)
        heads = [h for h, _, _ in out]
        collapsed = [h for h in heads if b"collapsed" in h]
        assert len(collapsed) == 19
        assert all(b"Content-Length: 60000" in h for h in collapsed)
        assert e.get("/stream").header("X-Cache") == "HIT"


def test_streaming_waiter_cut_when_the_fetch_fails(eddy):
    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                     b"Cache-Control: max-age=60\r\n\r\n" + b"x" * 400)
        time.sleep(0.8)
        return CLOSE

    with Backend(handler) as b:
        e = eddy((CONF % "").replace("@B@", str(b.port)))
        out = [None] * 3

        def one(i):
            out[i] = read_timed(e.port, "/cut")

        ts = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
            time.sleep(0.05)
        for t in ts:
            t.join(20)
        for head, body, first in out:
            assert b" 200 " in head.split(b"\r\n")[0]
            assert len(body) == 400
        assert len(b.requests) == 1
