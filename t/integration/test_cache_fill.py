"""The streaming miss (cache.md, Misses and request collapsing): a miss's
fetch is detached from the client that started it. The upstream is read
at its own pace into the temp file, which that client follows like any
waiter; the fetch goes on if the client goes; a response not stored
still reaches that client (and only it) from the one fetch. Every origin
counts its requests and records when it finished sending."""

import hashlib
import json
import os
import socket
import threading
import time

import pytest

from conftest import split_response, wait_for
from proxy_backend import Backend, TAKEN

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 1g}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
            access_log: {path: logs/json.log, format: json}
"""


def start(eddy, b):
    return eddy(CONF.replace("@B@", str(b.port)))


def send_get(port, path, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        # Before connecting, so that the window stays small.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Connection: close\r\n\r\n" % path.encode())
    return s


def read_all(s, timeout=30):
    s.settimeout(timeout)
    data = bytearray()
    while True:
        b = s.recv(1 << 20)
        if not b:
            return bytes(data)
        data += b


def origin(body, headers, first=0, delay=0.0, pieces=1):
    """A handler sending headers, the first bytes of body, then after
    delay the rest (in pieces, delay apart); done[n] is when its n-th
    response (1-based) was all sent."""
    done = {}
    count = [0]
    lock = threading.Lock()

    def handler(req, conn):
        with lock:
            count[0] += 1
            n = count[0]
        hs = [(k, v.replace("@N@", str(n))) for k, v in headers]
        head = "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
        for k, v in hs:
            head += "%s: %s\r\n" % (k, v)
        conn.sendall(head.encode() + b"\r\n" + body[:first])
        rest = body[first:]
        step = -(-len(rest) // pieces)
        for i in range(0, len(rest), step):
            if delay:
                time.sleep(delay)
            conn.sendall(rest[i:i + step])
        done[n] = time.monotonic()
        return TAKEN

    return handler, done


def test_fetch_goes_on_when_its_client_goes(eddy):
    body = bytes(range(256)) * 256           # 64 KiB
    handler, done = origin(body, [("Cache-Control", "max-age=60")],
                           first=1000, delay=0.2, pieces=8)
    with Backend(handler) as b:
        e = start(eddy, b)
        s = send_get(e.port, "/gone")
        s.settimeout(5)
        got = b""
        while b"\r\n\r\n" not in got or len(got.partition(
                b"\r\n\r\n")[2]) == 0:
            got += s.recv(4096)
        assert b"fwd=uri-miss; fwd-status=200; stored" in got
        s.close()                            # gone after the first bytes
        assert wait_for(lambda: 1 in done, timeout=10)
        time.sleep(0.3)
        r = e.get("/gone")
        assert r.status == 200 and r.body == body
        assert r.header("X-Cache") == "HIT"
        assert len(b.requests) == 1


def test_slow_client_holds_no_upstream_connection(eddy):
    body = hashlib.sha256(b"x").digest() * (16 * 1024 * 1024 // 32)
    handler, done = origin(body, [("Cache-Control", "max-age=60")])
    with Backend(handler) as b:
        e = start(eddy, b)
        s = send_get(e.port, "/slow", rcvbuf=4096)
        try:
            # The client reads nothing for a while: the origin still
            # sends its 16 MiB at its own pace, into the temp file.
            t0 = time.monotonic()
            assert wait_for(lambda: 1 in done, timeout=6), \
                "the origin was paced by the client"
            assert done[1] - t0 < 6
            data = read_all(s)
        finally:
            s.close()
        status, headers, rest = split_response(data)
        assert status == 200
        assert headers["x-cache"] == ["MISS"]
        assert headers["cache-status"] == \
            ["eddy; fwd=uri-miss; fwd-status=200; stored"]
        assert headers["content-length"] == [str(len(body))]
        assert hashlib.sha256(rest).digest() == hashlib.sha256(body).digest()
        assert len(b.requests) == 1
        assert e.get("/slow").header("X-Cache") == "HIT"


def test_set_cookie_goes_to_its_fetching_client_only(eddy):
    body = hashlib.sha256(b"c").digest() * (16 * 1024 * 1024 // 32)
    handler, done = origin(body, [("Cache-Control", "max-age=60"),
                                  ("Set-Cookie", "id=@N@")],
                           first=0, delay=0.8)
    with Backend(handler) as b:
        e = start(eddy, b)
        # The fetching client reads slowly; two more collapse on it.
        first = send_get(e.port, "/cookie", rcvbuf=4096)
        time.sleep(0.2)
        out = {}

        def other(i):
            s = send_get(e.port, "/cookie")
            try:
                out[i] = read_all(s)
            finally:
                s.close()

        ts = [threading.Thread(target=other, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        try:
            # Its response is not stored, yet the origin is read at its
            # own pace into a file only this client follows.
            assert wait_for(lambda: 1 in done, timeout=6), \
                "the origin was paced by the client"
            data = read_all(first)
        finally:
            first.close()
        for t in ts:
            t.join(30)
        status, headers, rest = split_response(data)
        assert status == 200
        assert headers["set-cookie"] == ["id=1"]
        assert headers["x-cache"] == ["MISS"]
        assert headers["cache-status"] == \
            ["eddy; fwd=uri-miss; fwd-status=200; detail=set-cookie"]
        assert rest == body
        # The others were released to fetch for themselves: their own
        # cookies, never the first one's.
        for i in range(2):
            st, hs, rest = split_response(out[i])
            assert st == 200 and rest == body
            assert hs["set-cookie"] in (["id=2"], ["id=3"]), hs
        # One fetch per client: the first one's response came from one.
        assert len(b.requests) == 3


def test_private_response_never_reaches_a_waiter(eddy):
    handler, done = origin(b"p" * 5000, [("Cache-Control", "private"),
                                         ("X-Who", "@N@")],
                           first=0, delay=0.6)
    with Backend(handler) as b:
        e = start(eddy, b)
        out = [None] * 3

        def one(i):
            out[i] = e.get("/private", timeout=20)

        ts = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in ts:
            t.start()
            time.sleep(0.1)
        for t in ts:
            t.join(30)
        assert len(b.requests) == 3
        who = sorted(r.header("X-Who") for r in out)
        assert who == ["1", "2", "3"]
        for r in out:
            assert r.body == b"p" * 5000
            assert r.header("Cache-Status").endswith("detail=private")


def test_head_and_range_on_a_streaming_miss(eddy):
    body = bytes(range(256)) * 64
    handler, done = origin(body, [("Cache-Control", "max-age=60"),
                                  ("ETag", '"r"')], first=100, delay=0.3)
    with Backend(handler) as b:
        e = start(eddy, b)
        r = e.get("/rg", headers={"Range": "bytes=1000-1999"})
        assert r.status == 206 and r.body == body[1000:2000]
        assert r.header("Content-Range") == "bytes 1000-1999/%d" % len(body)
        assert r.header("Cache-Status") == \
            "eddy; fwd=uri-miss; fwd-status=200; stored"
        r = e.request("HEAD", "/hd")
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == str(len(body))
        assert wait_for(lambda: 2 in done, timeout=10)
        time.sleep(0.2)
        # The HEAD's fetch went on to store the body.
        r = e.get("/hd")
        assert r.header("X-Cache") == "HIT" and r.body == body
        assert len(b.requests) == 2


def test_a_fetch_failing_before_its_head_answers_its_client(eddy):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                # nothing listens there
    e = eddy(CONF.replace("@B@", str(port)))
    r = e.get("/down")
    assert r.status == 502


def test_chunked_past_max_entry_size_reaches_its_client_whole(eddy):
    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n800\r\n"
                     + b"a" * 2048 + b"\r\n")
        time.sleep(0.3)
        conn.sendall(b"1000\r\n" + b"b" * 4096 + b"\r\n0\r\n\r\n")
        return TAKEN

    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)).replace(
            "max_size: 1g", "max_size: 1g, max_entry_size: 4k"))
        r = e.get("/grow")
        assert r.status == 200 and r.body == b"a" * 2048 + b"b" * 4096
        assert e.get("/grow").header("X-Cache") == "MISS"
        assert len(b.requests) == 2


def test_the_following_client_logs_the_fetch(eddy):
    handler, done = origin(b"l" * 3000, [("Cache-Control", "max-age=60")])
    with Backend(handler) as b:
        e = start(eddy, b)
        assert e.get("/log").header("X-Cache") == "MISS"
        assert e.get("/log").header("X-Cache") == "HIT"
        path = os.path.join(str(e.prefix), "logs", "json.log")
        e.stop()
        miss, hit = [json.loads(l) for l in open(path).read().splitlines()]
        # $upstream_* of the client that followed its fetch are the
        # fetch's; a hit has none.
        assert miss["upstream_cache_status"] == "MISS"
        assert miss["upstream_addr"] == "127.0.0.1:%d" % b.port
        assert str(miss["upstream_status"]) == "200"
        assert hit["upstream_cache_status"] == "HIT"
        assert hit["upstream_addr"] in (None, "", "-")


def test_disk_full_mid_body_goes_on_uncached(eddy):
    body = os.urandom(300 * 1024)
    handler, done = origin(body, [("Cache-Control", "max-age=60")],
                           first=1000, delay=0.05, pieces=30)
    with Backend(handler) as b:
        e = start(eddy, b)
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        if os.system("mount -t tmpfs -o size=64k tmpfs %s 2>/dev/null"
                     % tmp) != 0:
            pytest.skip("cannot mount a tmpfs here")
        try:
            # The head and some body fit, the rest does not: the client
            # of the fetch still gets it all, from memory.
            r = e.get("/full", timeout=20)
            assert r.status == 200 and r.body == body
            assert r.header("Cache-Status") == \
                "eddy; fwd=uri-miss; fwd-status=200; stored"
            assert len(b.requests) == 1
            assert "No space left on device" in e.all_logs()
            assert os.listdir(tmp) == []
        finally:
            try:
                e.stop()
            finally:
                os.system("umount %s 2>/dev/null || umount -l %s"
                          % (tmp, tmp))


def test_response_not_stored_waits_for_a_client_far_behind(eddy):
    # Not stored (no-store); the client lags more than max_entry_size
    # behind: the fetch waits for it (the private file it follows stays
    # small), then goes on; every byte arrives, in order.
    body = os.urandom(32 * 1024 * 1024)
    handler, done = origin(body, [("Cache-Control", "no-store")])
    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)).replace(
            "max_size: 1g", "max_size: 1g, max_entry_size: 64k"))
        s = send_get(e.port, "/lag", rcvbuf=4096)
        try:
            time.sleep(1.5)
            assert 1 not in done, "the fetch did not wait for its client"
            data = read_all(s)
        finally:
            s.close()
        status, headers, rest = split_response(data)
        assert status == 200
        assert headers["cache-status"] == \
            ["eddy; fwd=uri-miss; fwd-status=200; detail=no-store"]
        assert hashlib.sha256(rest).digest() == hashlib.sha256(body).digest()
        assert wait_for(lambda: 1 in done, timeout=10)
        assert len(b.requests) == 1


def test_a_miss_applies_the_clients_conditions(eddy):
    # The fetch goes without the client's conditions (cache.md): eddy
    # applies them to what it stores, on a miss as on a hit.
    body = b"c" * 5000
    handler, done = origin(body, [("Cache-Control", "max-age=60"),
                                  ("ETag", '"v1"')], first=100, delay=0.2)
    with Backend(handler) as b:
        e = start(eddy, b)
        r = e.get("/inm", headers={"If-None-Match": '"v1"'})
        assert r.status == 304 and r.body == b"", r.status
        assert r.header("ETag") == '"v1"'
        assert r.header("Cache-Status").endswith("stored")
        r = e.get("/im", headers={"If-Match": '"other"'})
        assert r.status == 412, r.status
        r = e.get("/inm2", headers={"If-None-Match": '"v0"',
                                    "Range": "bytes=0-9"})
        assert r.status == 206 and r.body == body[:10]
        assert wait_for(lambda: 3 in done, timeout=10)
        time.sleep(0.2)
        # Each fetch went on and stored the whole body.
        for path in ("/inm", "/im", "/inm2"):
            r = e.get(path)
            assert r.header("X-Cache") == "HIT" and r.body == body, path
        assert len(b.requests) == 3
