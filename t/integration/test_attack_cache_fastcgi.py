"""Attacks on the shared cache in fastcgi locations (cache.md): what a
hostile or odd FastCGI application (or origin) can make the cache do for
other requests. The application counts its requests: one the cache
answered is one it never saw."""

import time

import pytest

from fcgiutil import FcgiServer, end, response, stdout
from proxy_backend import Backend, response as http_response
from test_cache_fastcgi import start as cache_start

VALID = "cache_valid: {any: 1m}"


PROXY = """
    workers: 1
    caches:
      main:
        path: {prefix}/cache/main
        max_size: 64m
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main,
                    cache_valid: {any: 1m}}
"""


def start(eddy, srv):
    return cache_start(eddy, srv, VALID)


@pytest.mark.parametrize("head,body", [
    (b"Status: 304 Not Modified\r\nETag: \"a\"\r\n"
     b"Cache-Control: max-age=60\r\n\r\n", b""),
    (b"Status: 206 Partial Content\r\nContent-Range: bytes 0-1/10\r\n"
     b"Content-Length: 2\r\nCache-Control: max-age=60\r\n\r\n", b"ab"),
])
def test_unstorable_304_or_206_goes_to_the_app_once(eddy, head, body):
    # A 304 or 206 to the cache's plain GET is never stored; the client
    # that missed gets it from the one fetch, as any response not
    # stored, instead of asking the application a second time.
    def handler(req, conn):
        conn.sendall(response(head, body))
        return False
    status = int(head[8:11])
    with FcgiServer(handler) as srv:
        e = start(eddy, srv)
        for n in (1, 2):
            r = e.get("/odd")
            assert r.status == status and r.body == body
            assert r.header("X-Cache") == "MISS"
            if status == 206:
                assert r.header("Content-Range") == "bytes 0-1/10"
            time.sleep(0.2)
            assert len(srv.requests) == n


def test_unstorable_304_from_an_origin_is_asked_once(eddy):
    # The same in a proxy location: the code is shared.
    def handler(req, conn):
        return http_response(304, b"", [("ETag", '"a"'),
                                        ("Cache-Control", "max-age=60")],
                             length=False)
    with Backend(handler) as b:
        e = eddy(PROXY.replace("@B@", str(b.port)))
        r = e.get("/odd")
        assert r.status == 304 and r.header("ETag") == '"a"'
        time.sleep(0.2)
        assert len(b.requests) == 1


def test_local_redirect_target_never_stored_under_the_first_uri(eddy):
    # /account answers a local redirect to /login (say, for a client
    # without a session): the /login page the redirect gives must not
    # be stored under /account's key ($request_uri is still /account),
    # where every later /account request would get it without the
    # application being asked.
    def handler(req, conn):
        if req.params["SCRIPT_NAME"] == "/account":
            conn.sendall(response(b"Location: /login\r\n\r\n", b""))
        else:
            conn.sendall(response(b"Cache-Control: max-age=60\r\n\r\n",
                                  b"login page"))
        return False
    with FcgiServer(handler) as srv:
        e = start(eddy, srv)
        for _ in range(3):
            r = e.get("/account")
            assert r.status == 200 and r.body == b"login page"
            assert r.header("X-Cache") != "HIT"
        asked = [q.params["SCRIPT_NAME"] for q in srv.requests]
        assert asked.count("/account") >= 3, asked
        # /login itself is cached under its own key.
        assert e.get("/login").header("X-Cache") == "MISS"
        assert e.get("/login").header("X-Cache") == "HIT"


def test_head_over_the_entry_bound_is_too_large_and_asked_once(eddy):
    # A head over what an entry holds (64 KiB, a buffer_size that lets
    # it in): not stored, said so ("too-large", not the disk's
    # "no-space"), and each client gets it from one application request.
    head = b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 1000) for i in range(90))
    data = head + b"Cache-Control: max-age=60\r\n\r\nbody"

    def handler(req, conn):
        for i in range(0, len(data), 30000):
            conn.sendall(stdout(data[i:i + 30000]))
        conn.sendall(stdout(b"") + end())
        return False
    with FcgiServer(handler) as srv:
        e = cache_start(eddy, srv, VALID + "\n              buffer_size: 256k")
        for n in (1, 2, 3):
            r = e.get("/big")
            assert r.status == 200 and r.body == b"body"
            assert r.header("X-F89") == "v" * 1000
            assert r.header("Cache-Status") == \
                "eddy; fwd=uri-miss; fwd-status=200; detail=too-large"
            time.sleep(0.2)
            assert len(srv.requests) == n
