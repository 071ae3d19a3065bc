"""The cache of proxied responses (cache.md): misses stored, hits served
from the file, what is never stored, truncated and bad files, Vary,
revalidation. Every origin counts its requests: a response served from
the cache is proven by the origin not seeing it."""

import glob
import json
import os
import socket
import threading
import time

import pytest

from conftest import read_response, split_response, wait_for
from proxy_backend import Backend, CLOSE, TAKEN, response

CONF = """
    workers: 1
    caches:
      main:
        path: {prefix}/cache/main
        %s
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main%s}
            headers: {set: {X-Cache: $upstream_cache_status}}
            access_log: {path: logs/json.log, format: json}
          /plain/:
            proxy: {pass: 'http://127.0.0.1:@B@'}
"""

BODY = b"0123456789" * 10


def start(eddy, b, proxy="", cache="max_size: 64m", main=""):
    conf = (CONF % (cache, proxy)).replace("@B@", str(b.port))
    if main:
        conf = conf.replace("    workers: 1\n", "    workers: 1\n    %s\n" % main)
    return eddy(conf)


def entry_files(e):
    return [p for p in glob.glob(os.path.join(str(e.prefix), "cache", "main",
                                              "*", "*", "*"))]


def tmp_files(e):
    return os.listdir(os.path.join(str(e.prefix), "cache", "main", ".tmp"))


def fresh(req, conn):
    return response(200, BODY, [("Cache-Control", "max-age=60"),
                                ("ETag", '"v1"'),
                                ("Content-Type", "text/plain"),
                                ("X-Origin", "yes")])


def test_miss_then_hit(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b)
        r1 = e.get("/a?x=1")
        assert r1.status == 200 and r1.body == BODY
        assert r1.header("Cache-Status") == \
            "eddy; fwd=uri-miss; fwd-status=200; stored"
        assert r1.header("X-Cache") == "MISS"
        time.sleep(1.1)
        r2 = e.get("/a?x=1")
        assert r2.status == 200 and r2.body == BODY
        assert len(b.requests) == 1
        assert r2.header("X-Cache") == "HIT"
        assert r2.header("Cache-Status").startswith("eddy; hit; ttl=")
        age = int(r2.header("Age"))
        assert 1 <= age <= 3
        assert int(r2.header("Cache-Status").split("ttl=")[1]) == 60 - age
        assert r2.header("X-Origin") == "yes"
        assert r2.header("ETag") == '"v1"'
        assert r2.header("Content-Type") == "text/plain"
        assert r2.header("Content-Length") == "100"
        assert r2.header("Server").startswith("eddy")
        assert r2.header("Date")
        # Another URI is another key.
        assert e.get("/a?x=2").header("X-Cache") == "MISS"
        assert len(b.requests) == 2
        # The file is path/<1>/<2>/<32 hex>, the temp directory empty.
        files = entry_files(e)
        assert len(files) == 2
        for f in files:
            name = os.path.basename(f)
            assert len(name) == 32
            assert f.endswith("/%s/%s/%s" % (name[-1], name[-3:-1], name))
        assert tmp_files(e) == []
        # json access logs carry the status.
        path = os.path.join(str(e.prefix), "logs", "json.log")
        e.stop()
        st = [json.loads(l)["upstream_cache_status"]
              for l in open(path).read().splitlines()]
        assert st == ["MISS", "HIT", "MISS"], st


def test_upstream_request_is_a_plain_get(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b)
        r = e.request("HEAD", "/h", headers={
            "Range": "bytes=0-1", "If-None-Match": '"zz"',
            "If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT",
            "If-Range": '"v1"', "X-Other": "kept"})
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == "100"
        req = b.requests[0]
        assert req.method == "GET"
        for h in ("Range", "If-None-Match", "If-Modified-Since",
                  "If-Range"):
            assert req.header(h) is None, h
        assert req.header("X-Other") == "kept"
        # HEAD after the stored GET: a hit, no body.
        r = e.request("HEAD", "/h")
        assert r.status == 200 and r.body == b""
        assert r.header("X-Cache") == "HIT"
        assert r.header("Content-Length") == "100"
        r = e.get("/h")
        assert r.body == BODY and r.header("X-Cache") == "HIT"
        assert len(b.requests) == 1


def test_ranges_and_conditionals_on_a_hit(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b)
        assert e.get("/r").body == BODY
        r = e.get("/r", headers={"Range": "bytes=2-5"})
        assert r.status == 206 and r.body == b"2345"
        assert r.header("Content-Range") == "bytes 2-5/100"
        r = e.get("/r", headers={"Range": "bytes=0-0,-1"})
        assert r.status == 206
        assert r.header("Content-Type").startswith("multipart/byteranges")
        assert b"Content-Range: bytes 0-0/100" in r.body
        assert b"Content-Range: bytes 99-99/100" in r.body
        r = e.get("/r", headers={"Range": "bytes=500-"})
        assert r.status == 416
        assert r.header("Content-Range") == "bytes */100"
        r = e.get("/r", headers={"Range": "bytes=0-1", "If-Range": '"v0"'})
        assert r.status == 200 and r.body == BODY
        r = e.get("/r", headers={"If-None-Match": '"v1"'})
        assert r.status == 304 and r.body == b""
        assert r.header("ETag") == '"v1"'
        r = e.get("/r", headers={"If-Match": '"other"'})
        assert r.status == 412
        assert len(b.requests) == 1


@pytest.mark.parametrize("headers,detail", [
    ([("Cache-Control", "max-age=60, no-store")], "no-store"),
    ([("Cache-Control", "private, max-age=60")], "private"),
    ([("Cache-Control", "max-age=60"), ("Vary", "*")], "vary"),
    ([("Cache-Control", "max-age=60"), ("Set-Cookie", "s=1")], "set-cookie"),
    ([], "no-lifetime"),
    ([("Cache-Control", "max-age=0")], "no-lifetime"),
])
def test_never_stored(eddy, headers, detail):
    with Backend(lambda req, conn: response(200, b"x", headers)) as b:
        e = start(eddy, b)
        for _ in range(2):
            r = e.get("/n")
            assert r.status == 200 and r.body == b"x"
            assert r.header("Cache-Status") == \
                "eddy; fwd=uri-miss; fwd-status=200; detail=" + detail
            assert r.header("X-Cache") == "MISS"
        assert len(b.requests) == 2
        assert entry_files(e) == [] and tmp_files(e) == []


def test_authorization_needs_public(eddy):
    def handler(req, conn):
        cc = "public, max-age=60" if "pub" in req.path else "max-age=60"
        return response(200, b"a", [("Cache-Control", cc)])

    with Backend(handler) as b:
        e = start(eddy, b)
        auth = {"Authorization": "Basic dTpw"}
        for _ in range(2):
            r = e.get("/priv", headers=auth)
            assert r.header("Cache-Status").endswith("detail=authorization")
        assert e.get("/pub", headers=auth).header("X-Cache") == "MISS"
        assert e.get("/pub", headers=auth).header("X-Cache") == "HIT"
        assert len(b.requests) == 3


def test_set_cookie_ignored_is_stored_without_it(eddy):
    with Backend(lambda req, conn: response(
            200, b"c", [("Cache-Control", "max-age=60"),
                        ("Set-Cookie", "s=1")])) as b:
        e = start(eddy, b, proxy=", cache_ignore_headers: [Set-Cookie]")
        r = e.get("/c")
        assert r.header("Set-Cookie") == "s=1"
        assert r.header("X-Cache") == "MISS"
        r = e.get("/c")
        assert r.header("X-Cache") == "HIT" and r.body == b"c"
        assert r.header("Set-Cookie") is None
        assert len(b.requests) == 1
        for f in entry_files(e):
            assert b"s=1" not in open(f, "rb").read()


def test_cache_valid_by_status(eddy):
    def handler(req, conn):
        if req.path == "/missing":
            return response(404, b"nf")
        return response(200, b"ok")

    with Backend(handler) as b:
        e = start(eddy, b, proxy=", cache_valid: {404: 1m}")
        assert e.get("/missing").status == 404
        r = e.get("/missing")
        assert r.status == 404 and r.body == b"nf"
        assert r.header("X-Cache") == "HIT"
        assert e.get("/ok").header("Cache-Status").endswith(
            "detail=no-lifetime")
        assert e.get("/ok").header("X-Cache") == "MISS"
        assert len(b.requests) == 3


def test_methods_bypass_no_cache_min_uses(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b, proxy=", cache_bypass: [$arg_nocache], "
                  "no_cache: [$http_x_nostore], min_uses: 2")
        r = e.request("POST", "/m", body=b"x")
        assert r.header("Cache-Status") == "eddy; fwd=method"
        assert r.header("X-Cache") is None
        # min_uses: the second request's response is stored.
        r = e.get("/m")
        assert r.header("Cache-Status").endswith("detail=min-uses")
        r = e.get("/m", headers={"X-Nostore": "1"})
        assert r.header("Cache-Status").endswith("detail=no-store")
        r = e.get("/m", headers={"Cache-Control": "no-store"})
        assert r.header("Cache-Status").endswith("detail=no-store")
        r = e.get("/m")
        assert r.header("Cache-Status").endswith("stored")
        assert e.get("/m").header("X-Cache") == "HIT"
        n = len(b.requests)
        # Bypass: goes upstream, still stored; "0" does not bypass.
        r = e.get("/m?nocache=1")
        assert r.header("X-Cache") == "BYPASS"
        assert r.header("Cache-Status") == \
            "eddy; fwd=bypass; fwd-status=200; stored"
        assert e.get("/m?nocache=0").header("X-Cache") == "MISS"
        assert len(b.requests) == n + 2
        # Request directives other than no-store are ignored.
        r = e.get("/m", headers={"Cache-Control": "no-cache, max-age=0",
                                 "Pragma": "no-cache"})
        assert r.header("X-Cache") == "HIT"
        assert len(b.requests) == n + 2


def test_only_if_cached(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b)
        r = e.get("/o", headers={"Cache-Control": "only-if-cached"})
        assert r.status == 504
        assert len(b.requests) == 0
        e.get("/o")
        r = e.get("/o", headers={"Cache-Control": "only-if-cached"})
        assert r.status == 200 and r.header("X-Cache") == "HIT"


def test_not_looked_up_elsewhere(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b)
        r = e.get("/plain/x")
        assert r.header("Cache-Status") is None
        e.get("/plain/x")
        assert len(b.requests) == 2


def test_truncated_body_is_cut_and_not_stored(eddy):
    def handler(req, conn):
        if len(b.requests) == 1:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                         b"Cache-Control: max-age=60\r\n\r\n" + BODY[:50])
            time.sleep(0.2)
            return CLOSE
        return fresh(req, conn)

    with Backend(handler) as b:
        e = start(eddy, b)
        s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        s.sendall(b"GET /t HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"200 OK" in head and len(body) == 50
        r = e.get("/t")
        assert r.header("X-Cache") == "MISS" and r.body == BODY
        assert e.get("/t").header("X-Cache") == "HIT"
        assert len(b.requests) == 2
        assert tmp_files(e) == []


def test_close_delimited_body_not_stored(eddy):
    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                     b"Connection: close\r\n\r\nclose-body")
        return CLOSE

    with Backend(handler) as b:
        e = start(eddy, b)
        for _ in range(2):
            r = e.get("/cl")
            assert r.body == b"close-body"
            assert r.header("Cache-Status").endswith("detail=truncated")
        assert len(b.requests) == 2


def test_bad_files_are_a_miss_removed_and_logged(eddy):
    # valid 0: every hit asks whether the file changed (a file is checked
    # again once changed: test_file_changed_in_place_is_checked_after_valid).
    with Backend(fresh) as b:
        e = start(eddy, b, main="open_file_cache: {valid: 0s}")
        e.get("/g")
        (f,) = entry_files(e)
        good = open(f, "rb").read()
        cases = [b"garbage" * 40, good[:-10], good[:130],
                 good[:200] + bytes([good[200] ^ 1]) + good[201:]]
        for i, bad in enumerate(cases):
            with open(f, "wb") as fh:
                fh.write(bad)
            r = e.get("/g")
            assert r.status == 200 and r.body == BODY
            assert r.header("X-Cache") == "MISS", i
            assert len(b.requests) == i + 2
            # Stored again in its place.
            assert open(f, "rb").read() != bad
            assert e.get("/g").header("X-Cache") == "HIT"
        log = e.all_logs()
        assert log.count("invalid file") == len(cases), log
        for why in ("bad magic", "size disagrees with the header",
                    "bad CRC"):
            assert why in log
        assert 'cache "main": invalid file "%s' % f in log


def test_file_changed_in_place_is_checked_after_valid(eddy):
    # A hit uses what was checked of the file (CRC, key, head) while
    # open_file_cache's rules say it is the same file, as static files:
    # within `valid` the checked copy of a small entry is served; after
    # it the change is seen, the file found bad, removed, and a miss.
    with Backend(fresh) as b:
        e = start(eddy, b, main="open_file_cache: {max: 100, valid: 2s}")
        assert e.get("/g").header("X-Cache") == "MISS"
        assert e.get("/g").header("X-Cache") == "HIT"
        (f,) = entry_files(e)
        good = open(f, "rb").read()
        with open(f, "r+b") as fh:
            fh.write(b"garbage!")
        r = e.get("/g")
        assert (r.status, r.body, r.header("X-Cache")) == (200, BODY, "HIT")
        assert len(b.requests) == 1
        time.sleep(2.2)
        r = e.get("/g")
        assert (r.status, r.body, r.header("X-Cache")) == (200, BODY, "MISS")
        assert len(b.requests) == 2
        assert 'invalid file "%s" (bad magic), removed' % f in e.all_logs()
        assert open(f, "rb").read()[:8] == good[:8]
        assert e.get("/g").header("X-Cache") == "HIT"


def test_another_key_under_the_file_is_a_miss(eddy):
    def handler(req, conn):
        return response(200, req.path.encode(),
                        [("Cache-Control", "max-age=60")])

    with Backend(handler) as b:
        e = start(eddy, b)
        e.get("/k1")
        (f1,) = entry_files(e)
        e.get("/k2")
        (f2,) = [f for f in entry_files(e) if f != f1]
        # /k2's name now holds /k1's entry: the full key differs.
        os.replace(f1, f2)
        r = e.get("/k2")
        assert r.header("X-Cache") == "MISS" and r.body == b"/k2"
        assert e.get("/k2").body == b"/k2"
        assert len(b.requests) == 3


def test_vary_accept_encoding_variants(eddy):
    def handler(req, conn):
        ae = req.header("Accept-Encoding") or ""
        body = b"gzip-body" if "gzip" in ae else b"identity-body"
        return response(200, body, [("Cache-Control", "max-age=60"),
                                    ("Vary", "Accept-Encoding")])

    with Backend(handler) as b:
        e = start(eddy, b)
        gz = {"Accept-Encoding": "gzip, deflate"}
        r = e.get("/v", headers=gz)
        assert r.body == b"gzip-body" and r.header("X-Cache") == "MISS"
        r = e.get("/v")
        assert r.body == b"identity-body"
        assert r.header("Cache-Status") == \
            "eddy; fwd=vary-miss; fwd-status=200; stored"
        for _ in range(2):
            assert e.get("/v", headers=gz).body == b"gzip-body"
            # Another spelling of the same accepted subset: same variant.
            r = e.get("/v", headers={"Accept-Encoding": "deflate,gzip;q=1"})
            assert r.body == b"gzip-body" and r.header("X-Cache") == "HIT"
            r = e.get("/v")
            assert r.body == b"identity-body" and r.header("X-Cache") == "HIT"
        assert len(b.requests) == 2


def test_revalidation_304(eddy):
    def handler(req, conn):
        if req.header("If-None-Match") == '"r1"':
            return response(304, b"", [("Cache-Control", "max-age=1"),
                                       ("ETag", '"r1"')], length=False)
        return response(200, BODY, [("Cache-Control", "max-age=1"),
                                    ("ETag", '"r1"'),
                                    ("Last-Modified",
                                     "Tue, 14 Nov 2023 22:13:20 GMT")])

    with Backend(handler) as b:
        e = start(eddy, b)
        assert e.get("/rv").header("X-Cache") == "MISS"
        assert e.get("/rv").header("X-Cache") == "HIT"
        time.sleep(2.2)
        r = e.get("/rv")
        assert r.status == 200 and r.body == BODY
        assert r.header("X-Cache") == "REVALIDATED"
        assert r.header("Cache-Status") == \
            "eddy; fwd=stale; fwd-status=304; ttl=1"
        assert len(b.requests) == 2
        req = b.requests[1]
        assert req.header("If-None-Match") == '"r1"'
        assert req.header("If-Modified-Since") == \
            "Tue, 14 Nov 2023 22:13:20 GMT"
        # Fresh again after the 304.
        assert e.get("/rv").header("X-Cache") == "HIT"
        assert len(b.requests) == 2


def test_stale_without_validator_is_fetched_again(eddy):
    with Backend(lambda req, conn: response(
            200, b"s", [("Cache-Control", "max-age=1")])) as b:
        e = start(eddy, b)
        e.get("/s")
        time.sleep(2.2)
        r = e.get("/s")
        assert r.header("X-Cache") == "EXPIRED"
        assert r.header("Cache-Status") == \
            "eddy; fwd=stale; fwd-status=200; stored"
        assert b.requests[1].header("If-None-Match") is None
        assert e.get("/s").header("X-Cache") == "HIT"
        assert len(b.requests) == 2


def test_too_large_and_restart_keeps_entries(eddy):
    big = b"b" * 3000
    with Backend(lambda req, conn: response(
            200, big if req.path == "/big" else b"small",
            [("Cache-Control", "max-age=60")])) as b:
        e = start(eddy, b, cache="max_size: 64m\n        max_entry_size: 2k")
        assert e.get("/big").header("Cache-Status").endswith(
            "detail=too-large")
        assert e.get("/big").header("X-Cache") == "MISS"
        e.get("/small")
        e.stop()
        e.start()
        r = e.get("/small")
        assert r.header("X-Cache") == "HIT" and r.body == b"small"
        assert len(b.requests) == 3


def test_max_size_evicts_least_recently_used(eddy):
    with Backend(lambda req, conn: response(
            200, b"z" * 20000, [("Cache-Control", "max-age=60")])) as b:
        e = start(eddy, b, cache="max_size: 100k\n        max_entry_size: 50k")
        for i in range(8):
            e.get("/e%d" % i)
        # 8 entries of about 24k on disk: some went, the newest stayed.
        files = entry_files(e)
        assert 2 <= len(files) <= 5, files
        assert e.get("/e7").header("X-Cache") == "HIT"
        assert e.get("/e0").header("X-Cache") == "MISS"


def test_write_failure_logged_once(eddy, tmp_path):
    with Backend(fresh) as b:
        e = start(eddy, b)
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        if os.system("mount -t tmpfs -o size=12k tmpfs %s 2>/dev/null"
                     % tmp) != 0:
            pytest.skip("cannot mount a tmpfs here")
        try:
            with open(os.path.join(tmp, "fill"), "wb") as f:
                try:
                    f.write(b"f" * 64 * 1024)
                except OSError:
                    pass
            for i in range(3):
                r = e.get("/w%d" % i)
                assert r.status == 200 and r.body == BODY
            assert len(b.requests) == 3
            log = e.all_logs()
            assert log.count('cache "main": write failed (28: No space left '
                             'on device), storing paused') == 1, log
            assert e.get("/w0").header("X-Cache") == "MISS"
        finally:
            # A request still in eddy keeps its temp file open there,
            # and the mount busy: eddy stops first; the unmount runs
            # even when stopping fails, lazily when still busy, so no
            # mount outlives the test.
            try:
                e.stop()
            finally:
                os.system("umount %s 2>/dev/null || umount -l %s"
                          % (tmp, tmp))


def test_status_metrics(eddy):
    with Backend(fresh) as b:
        e = eddy((CONF % ("max_size: 64m", "")).replace("@B@", str(b.port))
                 .replace("          /plain/:", "          = /st:\n"
                          "            status: prometheus\n"
                          "          = /sj:\n"
                          "            status: json\n"
                          "          /plain/:"))
        e.get("/s1")
        e.get("/s1")
        e.get("/s1")
        e.get("/s2", headers={"Cache-Control": "no-store"})
        text = e.get("/st").body.decode()
        assert 'eddy_cache_requests_total{cache="main",status="hit"} 2' \
            in text, text
        assert 'eddy_cache_requests_total{cache="main",status="miss"} 2' \
            in text
        assert 'eddy_cache_entries{cache="main"} 1' in text
        size = [l for l in text.splitlines()
                if l.startswith('eddy_cache_size_bytes{cache="main"}')]
        assert size and int(size[0].split()[-1]) > 100
        assert 'eddy_cache_evictions_total{cache="main"} 0' in text
        d = json.loads(e.get("/sj").body)
        assert d["caches"]["main"]["requests"]["hit"] == 2
        assert d["caches"]["main"]["entries"] == 1


def test_large_hit_by_sendfile_with_ranges(eddy):
    big = os.urandom(300 * 1024)
    with Backend(lambda req, conn: response(
            200, big, [("Cache-Control", "max-age=60"),
                       ("ETag", '"big"')])) as b:
        e = start(eddy, b)
        assert e.get("/big").body == big
        r = e.get("/big")
        assert r.header("X-Cache") == "HIT" and r.body == big
        r = e.get("/big", headers={"Range": "bytes=100000-100009"})
        assert r.status == 206 and r.body == big[100000:100010]
        r = e.request("HEAD", "/big")
        assert r.body == b"" and r.header("Content-Length") == str(len(big))
        assert len(b.requests) == 1


def test_range_on_a_miss_is_cut_from_the_stream(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b)
        r = e.get("/rm", headers={"Range": "bytes=10-19"})
        assert r.status == 206 and r.body == BODY[10:20]
        assert r.header("Content-Range") == "bytes 10-19/100"
        assert r.header("Cache-Status").endswith("stored")
        assert b.requests[0].header("Range") is None
        # The whole body was stored.
        r = e.get("/rm")
        assert r.header("X-Cache") == "HIT" and r.body == BODY
        # Several ranges on a miss: the whole 200; If-Range disagreeing too.
        r = e.get("/rm2", headers={"Range": "bytes=0-1,5-6"})
        assert r.status == 200 and r.body == BODY
        r = e.get("/rm3", headers={"Range": "bytes=0-1", "If-Range": '"no"'})
        assert r.status == 200 and r.body == BODY
        r = e.get("/rm4", headers={"Range": "bytes=0-1", "If-Range": '"v1"'})
        assert r.status == 206 and r.body == BODY[:2]
        assert len(b.requests) == 4


def test_hits_over_http2(eddy):
    h2util = pytest.importorskip("h2util")
    big = os.urandom(200 * 1024)

    def handler(req, conn):
        body = big if req.path == "/h2big" else BODY
        return response(200, body, [("Cache-Control", "max-age=60")])

    with Backend(handler) as b:
        conf = (CONF % ("max_size: 64m", "")).replace("@B@", str(b.port))
        conf = conf.replace("- listen: 127.0.0.1:{port}",
                            "- listen: [{address: '127.0.0.1:{port}', "
                            "http2: true}]")
        e = eddy(conf)
        c = h2util.H2(e.port)
        try:
            for path, body in (("/h2", BODY), ("/h2big", big)):
                s = c.get(path)
                assert s.status == 200 and s.body == body
                assert s.header("x-cache") == "MISS"
                s = c.get(path)
                assert s.status == 200 and s.body == body
                assert s.header("x-cache") == "HIT"
                assert s.header("age") is not None
            s = c.get("/h2big", headers=[("range", "bytes=5-9")])
            assert s.status == 206 and s.body == big[5:10]
        finally:
            c.close()
        assert len(b.requests) == 2


def test_keys_over_4k_are_not_cached(eddy):
    with Backend(fresh) as b:
        e = start(eddy, b)
        path = "/k?" + "a" * 4200
        for _ in range(2):
            r = e.get(path)
            assert r.status == 200
            assert r.header("Cache-Status") == "eddy; fwd=request"
        assert len(b.requests) == 2
