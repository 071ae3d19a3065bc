"""Hostile or odd origins against the 304 update of a cache entry and
the worker's checked-entry hit path (cache.md; RFC 9111 4.3.4, 3.2,
4.2.3)."""

import email.utils
import os
import time

import pytest

from proxy_backend import Backend, response

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m, max_entry_size: 16m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""

BODY = b"0123456789" * 10


def start(eddy, b):
    return eddy(CONF.replace("@B@", str(b.port)))


def now_date(delta=0):
    return email.utils.formatdate(time.time() + delta, usegmt=True)


def ttl(r):
    return int(r.header("Cache-Status").split("ttl=")[1])


def test_304_age_replaces_the_stored_age(eddy):
    # The first response was 95 s old at the origin's cache; once
    # revalidated by a 304 of Age 0, the entry is 0 s old, not 95.
    def handler(req, conn):
        if req.header("If-None-Match"):
            return response(304, b"", [("Cache-Control", "max-age=100"),
                                       ("ETag", '"a"'), ("Age", "0"),
                                       ("Date", now_date())], length=False)
        return response(200, BODY, [("Cache-Control", "max-age=100"),
                                    ("ETag", '"a"'), ("Age", "99"),
                                    ("Date", now_date())])
    with Backend(handler) as b:
        e = start(eddy, b)
        r = e.get("/age")
        assert r.header("X-Cache") == "MISS"
        time.sleep(2.1)
        r = e.get("/age")
        assert r.header("X-Cache") == "REVALIDATED", r.headers
        assert ttl(r) >= 98, r.header("Cache-Status")
        r = e.get("/age")
        assert r.header("X-Cache") == "HIT"
        assert ttl(r) >= 98, r.header("Cache-Status")
        assert r.header("Age") in ("0", "1")
        assert len(b.requests) == 2


def test_304_date_replaces_the_stored_date(eddy):
    # The stored Date is that of the first response; the 304's (now)
    # dates the revalidated entry.
    def handler(req, conn):
        if req.header("If-None-Match"):
            return response(304, b"", [("Cache-Control", "max-age=2"),
                                       ("ETag", '"a"'),
                                       ("Date", now_date())], length=False)
        return response(200, BODY, [("Cache-Control", "max-age=2"),
                                    ("ETag", '"a"'), ("Date", now_date())])
    with Backend(handler) as b:
        e = start(eddy, b)
        e.get("/date")
        time.sleep(2.5)
        r = e.get("/date")
        assert r.header("X-Cache") == "REVALIDATED", r.headers
        r = e.get("/date")
        assert r.header("X-Cache") == "HIT", r.headers
        assert len(b.requests) == 2


CONF2 = """
    workers: 2
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main, purge: true,
                    cache_bypass: [$arg_bypass]}
            headers: {set: {X-Cache: $upstream_cache_status}}
            access:
              - {allow: 127.0.0.1, methods: [PURGE]}
              - {deny: all, methods: [PURGE]}
"""


def test_two_workers_never_serve_a_replaced_or_purged_entry(eddy):
    version = [b"v1"]

    def handler(req, conn):
        return response(200, version[0] + b"-" + req.path.encode(),
                        [("Cache-Control", "max-age=60")])
    with Backend(handler) as b:
        e = eddy(CONF2.replace("@B@", str(b.port)))
        for _ in range(3):
            for _ in range(20):
                r = e.request("GET", "/k", headers={"Connection": "close"})
                assert r.body.startswith(version[0]), (version, r.body)
            # Replaced by a bypassing fetch in whichever worker.
            version[0] = b"v%d" % (int(version[0][1:]) + 1)
            r = e.request("GET", "/k?bypass=1",
                          headers={"Connection": "close"})
            # The bypass key differs ($request_uri); purge then.
            r = e.request("PURGE", "/k", headers={"Connection": "close"})
            assert r.status == 200
        for _ in range(20):
            r = e.request("GET", "/k", headers={"Connection": "close"})
            assert r.body.startswith(version[0]), (version, r.body)


def hostile_304(fields):
    def handler(req, conn):
        if req.header("If-None-Match"):
            return response(304, b"", fields, length=False)
        return response(200, BODY, [("Cache-Control", "max-age=1"),
                                    ("ETag", '"a"'), ("X-Secret", "stored"),
                                    ("Content-Type", "text/plain")])
    return handler


def check_hits(e, path, n=3):
    for _ in range(n):
        r = e.raw(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                   % path).encode())
        head, _, body = r.partition(b"\r\n\r\n")
        assert body == BODY, (head, body[:200])
        h = head.decode("latin-1").lower()
        assert "content-length: 100\r\n" in h, head
        assert "transfer-encoding" not in h, head
        assert "set-cookie" not in h, head
        assert "x-secret: stored" in h, head
    return head


@pytest.mark.parametrize("framing", [("Transfer-Encoding", "chunked"),
                                     ("Content-Length", "5")])
def test_304_with_framing_cookie_and_connection_fields(eddy, framing):
    fields = [("Cache-Control", "max-age=60"), ("ETag", '"a"'), framing,
              ("Connection", "X-Secret, keep-alive"), ("X-Secret", "evil"),
              ("Set-Cookie", "sid=attacker"), ("Vary", "Cookie"),
              ("Content-Encoding", "gzip")]
    with Backend(hostile_304(fields)) as b:
        e = start(eddy, b)
        e.get("/h")
        time.sleep(2.1)
        r = e.get("/h")
        assert r.header("X-Cache") == "REVALIDATED", r.headers
        head = check_hits(e, "/h")
        assert b"Vary" not in head and b"Content-Encoding" not in head


def test_304_with_many_and_huge_fields(eddy):
    fields = [("Cache-Control", "max-age=60"), ("ETag", '"a"')]
    fields += [("X-F%d" % i, "v" * 50) for i in range(95)]
    fields += [("X-Huge", "h" * 1500)]
    with Backend(hostile_304(fields)) as b:
        e = start(eddy, b)
        e.get("/m")
        time.sleep(2.1)
        head = check_hits(e, "/m", 1)
        assert b"X-Cache: REVALIDATED" in head
        head = check_hits(e, "/m")
        assert b"X-Huge: " + b"h" * 1500 + b"\r\n" in head
        assert b"X-Cache: HIT" in head and b"X-F94: " in head


def deleted_cache_fds(e):
    """Descriptors of any eddy process open on a removed cache file."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if b"eddy" not in f.read():
                    continue
            for fd in os.listdir("/proc/%s/fd" % pid):
                t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                if str(e.prefix) in t and "/cache/main/" in t \
                        and t.endswith("(deleted)"):
                    out.append((pid, t))
        except OSError:
            continue
    return out


BIG = b"x" * (1 << 20)


def test_purged_or_evicted_entry_releases_its_disk_space(eddy):
    # A worker keeps a hit entry's descriptor open for the next hit; once
    # the entry is purged (or evicted) its file is removed, and no worker
    # may keep holding its blocks (the disk the cache frees stays used,
    # and min_free or a full disk evicts everything for nothing).
    def handler(req, conn):
        return response(200, BIG, [("Cache-Control", "max-age=600")])
    conf = CONF2.replace("workers: 2", "workers: 1").replace(
        "max_size: 64m", "max_size: 3m, max_entry_size: 4m")
    with Backend(handler) as b:
        e = eddy(conf.replace("@B@", str(b.port)))
        for _ in range(3):
            r = e.get("/p1")
            assert r.body == BIG
        assert e.get("/p1").header("X-Cache") == "HIT"
        assert e.request("PURGE", "/p1").status == 200
        # Evicted by max_size: /e0 goes when /e3 comes.
        for i in range(3):
            e.get("/e%d" % i)
            e.get("/e%d" % i)
        for i in range(3, 6):
            e.get("/e%d" % i)
        deadline = time.monotonic() + 3
        while deleted_cache_fds(e) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert deleted_cache_fds(e) == []
