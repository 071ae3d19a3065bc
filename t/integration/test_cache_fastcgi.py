"""The shared cache in fastcgi locations (cache.md: `fastcgi` takes the
proxy's keys): hits, cache_valid, what is never stored, Vary, request
collapsing, revalidation by a Status: 304, PURGE, truncated answers,
use_stale. The application is a scripted FastCGI responder that counts
its requests: a response served from the cache is proven by the
application not seeing it."""

import socket
import threading
import time

from conftest import (check_config_error, format_config, free_port,
                      read_until_close, run_eddy)
from fcgiutil import FcgiServer, end, response, stdout

CONF = """
    workers: 1
    error_log: {prefix}/logs/error.log
    caches:
      main:
        path: {prefix}/cache/main
        max_size: 64m
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            fastcgi:
              pass: "@S@"
              check_script: false
              read_timeout: 3s
              cache: main
              %s
            headers: {set: {X-Cache: $upstream_cache_status}}
            %s
"""

BODY = bytes(range(256)) * 4 + b"\r\n\r\nend"


def start(eddy, srv, block="", extra=""):
    return eddy((CONF % (block, extra)).replace("@S@", srv.pass_))


def app(head, body=BODY):
    """An application answering every request with head and body."""
    def handler(req, conn):
        conn.sendall(response(head, body))
        return False
    return handler


FRESH = (b"Content-Type: application/octet-stream\r\n"
         b"Cache-Control: max-age=60\r\nETag: \"v1\"\r\nX-App: yes\r\n\r\n")


def test_second_get_is_a_hit(eddy):
    with FcgiServer(app(FRESH)) as srv:
        e = start(eddy, srv)
        r1 = e.get("/a?x=1")
        assert r1.status == 200 and r1.body == BODY
        assert r1.header("Cache-Status") == \
            "eddy; fwd=uri-miss; fwd-status=200; stored"
        assert r1.header("X-Cache") == "MISS"
        r2 = e.get("/a?x=1")
        assert r2.status == 200 and r2.body == BODY
        assert len(srv.requests) == 1
        assert r2.header("X-Cache") == "HIT"
        assert r2.header("Cache-Status").startswith("eddy; hit; ttl=")
        assert r2.header("X-App") == "yes"
        assert r2.header("ETag") == '"v1"'
        assert r2.header("Content-Type") == "application/octet-stream"
        assert r2.header("Content-Length") == str(len(BODY))
        # The stored entry answers conditions and ranges itself.
        r3 = e.get("/a?x=1", headers={"If-None-Match": '"v1"'})
        assert r3.status == 304 and r3.body == b""
        r4 = e.get("/a?x=1", headers={"Range": "bytes=2-5"})
        assert r4.status == 206 and r4.body == BODY[2:6]
        # HEAD uses the GET entry.
        r5 = e.request("HEAD", "/a?x=1")
        assert r5.status == 200 and r5.body == b""
        assert len(srv.requests) == 1
        # Another URI is another key.
        assert e.get("/a?x=2").header("X-Cache") == "MISS"
        assert len(srv.requests) == 2


def test_fetch_is_a_plain_get(eddy):
    with FcgiServer(app(FRESH)) as srv:
        e = start(eddy, srv)
        r = e.request("HEAD", "/h", headers={
            "Range": "bytes=0-1", "If-None-Match": '"zz"',
            "If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT",
            "If-Range": '"v1"', "X-Other": "kept"})
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == str(len(BODY))
        p = srv.requests[0].params
        assert p["REQUEST_METHOD"] == "GET"
        for name in ("HTTP_RANGE", "HTTP_IF_NONE_MATCH",
                     "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_RANGE"):
            assert name not in p, name
        assert p["HTTP_X_OTHER"] == "kept"
        r = e.get("/h")
        assert r.status == 200 and r.body == BODY
        assert r.header("X-Cache") == "HIT"
        assert len(srv.requests) == 1


def by_path(req, conn):
    """Status and headers chosen by the path; no lifetime of its own."""
    path = req.params["REQUEST_URI"]
    heads = {
        "/ok": b"Content-Type: text/plain\r\n\r\n",
        "/nf": b"Status: 404 Not Found\r\nContent-Type: text/plain\r\n\r\n",
        "/err": b"Status: 500\r\nContent-Type: text/plain\r\n\r\n",
        "/nostore": b"Cache-Control: no-store\r\n\r\n",
        "/private": b"Cache-Control: private, max-age=60\r\n\r\n",
        "/cookie": b"Set-Cookie: s=1\r\nCache-Control: max-age=60\r\n\r\n",
    }
    conn.sendall(response(heads[path], path.encode() + b" body"))
    return False


def test_cache_valid_by_status(eddy):
    with FcgiServer(by_path) as srv:
        e = start(eddy, srv, "cache_valid: {200: 1m, 404: 30s}")
        for path, status, second in (("/ok", 200, "HIT"), ("/nf", 404, "HIT"),
                                     ("/err", 500, "MISS")):
            n = len(srv.requests)
            r1 = e.get(path)
            r2 = e.get(path)
            assert r1.status == r2.status == status, path
            assert r2.body == path.encode() + b" body"
            assert r2.header("X-Cache") == second, path
            assert len(srv.requests) == n + (1 if second == "HIT" else 2)
        assert e.get("/err").header("Cache-Status") == \
            "eddy; fwd=uri-miss; fwd-status=500; detail=no-lifetime"


def test_never_stored(eddy):
    with FcgiServer(by_path) as srv:
        e = start(eddy, srv, "cache_valid: {any: 1m}")
        for path, detail in (("/nostore", "no-store"),
                             ("/private", "private"),
                             ("/cookie", "set-cookie")):
            n = len(srv.requests)
            for _ in range(2):
                r = e.get(path)
                assert r.status == 200
                assert r.body == path.encode() + b" body"
                assert r.header("Cache-Status") == \
                    "eddy; fwd=uri-miss; fwd-status=200; detail=" + detail
            assert len(srv.requests) == n + 2, path
        # The fetching client still gets its cookie.
        assert e.get("/cookie").header("Set-Cookie") == "s=1"


def test_vary_variants(eddy):
    def handler(req, conn):
        lang = req.params.get("HTTP_ACCEPT_LANGUAGE", "none")
        conn.sendall(response(b"Cache-Control: max-age=60\r\n"
                              b"Vary: Accept-Language\r\n\r\n",
                              lang.encode()))
        return False
    with FcgiServer(handler) as srv:
        e = start(eddy, srv)
        en = {"Accept-Language": "en"}
        fr = {"Accept-Language": "fr"}
        assert e.get("/v", headers=en).body == b"en"
        assert e.get("/v", headers=fr).body == b"fr"
        r = e.get("/v", headers=en)
        assert r.body == b"en" and r.header("X-Cache") == "HIT"
        r = e.get("/v", headers=fr)
        assert r.body == b"fr" and r.header("X-Cache") == "HIT"
        assert len(srv.requests) == 2
        r = e.get("/v", headers={"Accept-Language": "de"})
        assert r.body == b"de" and r.header("X-Cache") == "MISS"
        assert len(srv.requests) == 3


def test_cold_key_collapsed_to_one_app_request(eddy):
    big = bytes(range(256)) * 400

    def slow(req, conn):
        time.sleep(0.5)
        conn.sendall(stdout(b"Cache-Control: max-age=60\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(big)))
        for i in range(0, len(big), 20000):
            conn.sendall(stdout(big[i:i + 20000]))
            time.sleep(0.02)
        conn.sendall(stdout(b"") + end())
        return False
    with FcgiServer(slow) as srv:
        e = start(eddy, srv)
        results = [None] * 100

        def client(i):
            results[i] = e.get("/cold", timeout=15)
        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert all(r is not None and r.status == 200 and r.body == big
                   for r in results)
        assert len(srv.requests) == 1
        assert sorted(set(r.header("X-Cache") for r in results)) <= \
            ["HIT", "MISS"]


def test_stale_revalidated_by_status_304(eddy):
    def handler(req, conn):
        p = req.params
        if len(srv.requests) == 1:
            conn.sendall(response(
                b"Cache-Control: max-age=1\r\nETag: \"e1\"\r\n"
                b"Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
                b"X-Gen: 1\r\n\r\n", BODY))
        elif (p.get("HTTP_IF_NONE_MATCH") == '"e1"'
              and p.get("HTTP_IF_MODIFIED_SINCE")
              == "Tue, 14 Nov 2023 22:13:20 GMT"):
            conn.sendall(response(b"Status: 304 Not Modified\r\n"
                                  b"Cache-Control: max-age=60\r\n"
                                  b"X-Gen: 2\r\n\r\n", b""))
        else:
            conn.sendall(response(b"Cache-Control: max-age=60\r\n\r\n",
                                  b"refetched"))
        return False
    with FcgiServer(handler) as srv:
        e = start(eddy, srv)
        assert e.get("/r").header("X-Gen") == "1"
        time.sleep(1.6)
        r = e.get("/r")
        assert len(srv.requests) == 2
        assert r.status == 200 and r.body == BODY
        assert r.header("X-Cache") == "REVALIDATED"
        assert r.header("Cache-Status") == \
            "eddy; fwd=stale; fwd-status=304; ttl=60"
        assert r.header("X-Gen") == "2"
        # The entry was updated: fresh for 60 s with the new field.
        r = e.get("/r")
        assert r.body == BODY and r.header("X-Cache") == "HIT"
        assert r.header("X-Gen") == "2"
        assert len(srv.requests) == 2


def test_purge(eddy):
    with FcgiServer(app(FRESH)) as srv:
        e = start(eddy, srv, "purge: true",
                  "access: [{allow: 127.0.0.1, methods: [PURGE]}, "
                  "{deny: all, methods: [PURGE]}]")
        assert e.get("/p").header("X-Cache") == "MISS"
        assert e.get("/p").header("X-Cache") == "HIT"
        r = e.request("PURGE", "/p")
        assert r.status == 200
        assert e.request("PURGE", "/p").status == 404
        r = e.get("/p")
        assert r.header("X-Cache") == "MISS" and r.body == BODY
        assert len(srv.requests) == 2


def raw_get(e, path):
    s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    data, closed = read_until_close(s)
    s.close()
    assert closed, "the client connection must be cut off"
    return data


def test_truncated_answer_never_becomes_a_hit(eddy):
    def handler(req, conn):
        path = req.params["REQUEST_URI"]
        if len(srv.requests) % 2 == 1:
            if path == "/len":
                # Half its Content-Length, then the connection closes.
                conn.sendall(stdout(b"Cache-Control: max-age=60\r\n"
                                    b"Content-Length: 100\r\n\r\n"
                                    + b"x" * 50))
            else:
                # No length: the body ends with a close, without
                # END_REQUEST.
                conn.sendall(stdout(b"Cache-Control: max-age=60\r\n\r\n"
                                    + b"y" * 50))
            time.sleep(0.2)
            return False
        conn.sendall(response(b"Cache-Control: max-age=60\r\n\r\n",
                              b"whole"))
        return False
    with FcgiServer(handler) as srv:
        e = start(eddy, srv)
        for path in ("/len", "/nolen"):
            n = len(srv.requests)
            data = raw_get(e, path)
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), data[:200]
            if path == "/len":
                assert b"Content-Length: 100" in head
                assert len(body) < 100
            else:
                # Chunked, never the last chunk.
                assert b"Transfer-Encoding: chunked" in head
                assert not body.endswith(b"0\r\n\r\n")
            r = e.get(path)
            assert r.status == 200 and r.body == b"whole"
            assert r.header("X-Cache") == "MISS"
            assert e.get(path).header("X-Cache") == "HIT"
            assert len(srv.requests) == n + 2


def test_use_stale_error_when_the_app_is_down(eddy):
    srv = FcgiServer(app(b"Cache-Control: max-age=1\r\n\r\n"))
    try:
        e = start(eddy, srv, "use_stale: [error]")
        assert e.get("/s").header("X-Cache") == "MISS"
        time.sleep(2.2)
    finally:
        srv.close()
    r = e.get("/s")
    assert r.status == 200 and r.body == BODY
    assert r.header("X-Cache") == "STALE"
    cs = r.header("Cache-Status")
    assert cs.startswith("eddy; fwd=stale; ttl=-") and \
        cs.endswith("; detail=stale-error"), cs
    # Without use_stale: the error.
    srv2 = FcgiServer(app(b"Cache-Control: max-age=1\r\n\r\n"))
    try:
        e2 = start(eddy, srv2)
        assert e2.get("/s").status == 200
        time.sleep(1.6)
    finally:
        srv2.close()
    assert e2.get("/s").status == 502


BAD = """
    caches:
      main: {path: cache/main, max_size: 1m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            fastcgi:
              pass: "unix:/tmp/none.sock"
              check_script: false
              %s
"""


def check(tmp_path, name, lines, needle, pattern):
    d = tmp_path / name
    d.mkdir()
    block = "\n              ".join(lines)
    check_config_error(d, BAD % block, needle, pattern)


def test_config_errors(tmp_path):
    # Each error at the key's or value's FILE:LINE:COL, as for proxy.
    check(tmp_path, "a", ["cache_valid: {200: 1m}"], "cache_valid",
          r'cache_valid needs "cache" in the same fastcgi block')
    check(tmp_path, "b", ["cache: mian"], "mian",
          r'unknown cache "mian"; did you mean "main"\?')
    check(tmp_path, "c", ["cache: main", "cache_methods: [GET, POST]"],
          "[GET, POST]", r"POST cannot be cached")
    check(tmp_path, "d", ["cache: main", "purge: true"], "true",
          r"purge: true needs an access rule")
    check(tmp_path, "e", ["cache: main", "min_uses: 1000001"], "1000001",
          r'"fastcgi.min_uses": "1000001" is out of range')
    check(tmp_path, "f", ["cache: main", "use_stale: [eror]"], "[eror]",
          r"fastcgi.use_stale.: expected error, timeout")


def test_local_redirect_is_followed_not_stored(eddy):
    def handler(req, conn):
        conn.sendall(response(b"Location: /other\r\n\r\n", b""))
        return False
    with FcgiServer(handler) as srv:
        conf = (CONF % ("", "")).replace("@S@", srv.pass_).replace(
            "        locations:\n", "        locations:\n          /other:\n"
            "            return: {status: 200, body: \"other\\n\"}\n")
        e = eddy(conf)
        for n in (2, 3, 4):
            r = e.get("/x")
            assert r.status == 200 and r.body == b"other\n"
            # The detached fetch cannot redirect the client, which asks
            # itself; the key is then hit-for-miss: one request each.
            assert len(srv.requests) == n


def test_dump_shows_cache_keys_only_with_cache(tmp_path):
    text = format_config("""
        caches:
          main: {path: cache/main, max_size: 64m}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /a:
                fastcgi: {pass: "unix:/tmp/none.sock", check_script: false,
                          cache: main, cache_valid: {200: 1m}}
              /b:
                fastcgi: {pass: "unix:/tmp/none.sock", check_script: false}
        """, [free_port()], tmp_path)
    for d in ("conf", "logs"):
        (tmp_path / d).mkdir()
    conf = tmp_path / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, out, err = run_eddy(["-p", tmp_path, "-c", conf, "-T"], cwd=tmp_path)
    assert rc == 0, err
    assert out.count("cache: main") == 1
    assert out.count("cache_key: $scheme://$host$request_uri") == 1
    assert out.count("revalidate: true") == 1
    assert "cache_valid:\n            200: 1m\n" in out
    # The dump loads again.
    conf.write_text(out)
    rc, out2, err = run_eddy(["-p", tmp_path, "-c", conf, "-t"],
                             cwd=tmp_path)
    assert rc == 0, err


def test_detached_fetch_has_the_server_params(eddy, tmp_path):
    # The fetch of a miss runs without the client's socket: SERVER_ADDR
    # and SERVER_PORT are still the ones the client reached.
    sock = tmp_path / "eddy.sock"

    def handler(req, conn):
        p = req.params
        body = ("%s|%s" % (p.get("SERVER_ADDR", "-"),
                           p.get("SERVER_PORT", "-"))).encode()
        conn.sendall(response(b"Cache-Control: max-age=60\r\n\r\n", body))
        return False
    with FcgiServer(handler) as srv:
        conf = (CONF % ("", "")).replace("@S@", srv.pass_).replace(
            "listen: 127.0.0.1:{port}",
            'listen: [127.0.0.1:{port}, "unix:%s"]' % sock)
        e = eddy(conf)
        r = e.get("/tcp")
        assert r.header("X-Cache") == "MISS"
        assert r.body == b"127.0.0.1|%d" % e.port
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(b"GET /unix HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data, _ = read_until_close(s)
        s.close()
        assert data.startswith(b"HTTP/1.1 200"), data
        assert b"\r\nX-Cache: MISS\r\n" in data
        assert data.endswith(b"\r\n\r\nunix:|-"), data
