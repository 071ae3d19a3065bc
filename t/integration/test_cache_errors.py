"""Cache-Status on the responses eddy makes itself in a location with
`cache` (cache.md, Cache-Status): its 502 when the upstream is down,
504 when it times out, only-if-cached's 504, 412 on a hit, the 504 of a
stale entry that must be revalidated; and $upstream_cache_status in the
access log for them."""

import json
import os
import time

from conftest import free_port
from proxy_backend import Backend, CLOSE, response

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main,
                    read_timeout: 400ms, connect_timeout: 400ms}
            access_log: {path: logs/json.log, format: json}
"""


def start(eddy, port):
    return eddy(CONF.replace("@B@", str(port)))


def statuses(e):
    path = os.path.join(str(e.prefix), "logs", "json.log")
    e.stop()
    return [(int(l["status"]), l["upstream_cache_status"])
            for l in map(json.loads, open(path).read().splitlines())]


def test_upstream_down_502(eddy):
    e = start(eddy, free_port())
    r = e.get("/down")
    assert r.status == 502
    assert r.header("Cache-Status") == "eddy; fwd=uri-miss; detail=error"
    assert statuses(e) == [(502, "MISS")]


def test_upstream_timeout_504(eddy):
    def silent(req, conn):
        time.sleep(2)
        return CLOSE
    with Backend(silent) as b:
        e = start(eddy, b.port)
        r = e.get("/slow")
        assert r.status == 504
        assert r.header("Cache-Status") == \
            "eddy; fwd=uri-miss; detail=timeout"
        assert statuses(e) == [(504, "MISS")]


def test_own_answers_of_the_cache(eddy):
    b = Backend(lambda req, conn: response(
        200, b"x", [("Cache-Control", "max-age=1, must-revalidate"),
                    ("ETag", '"e"')]))
    b.__enter__()
    try:
        e = start(eddy, b.port)
        r = e.get("/o", headers={"Cache-Control": "only-if-cached"})
        assert r.status == 504
        assert r.header("Cache-Status") == \
            "eddy; fwd=uri-miss; detail=only-if-cached"
        assert e.get("/o").status == 200
        r = e.get("/o", headers={"If-Match": '"other"'})
        assert r.status == 412
        assert r.header("Cache-Status").startswith("eddy; hit; ttl=")
    finally:
        b.__exit__(None, None, None)
    # Stale, must-revalidate, the origin gone: 504.
    time.sleep(2.2)
    r = e.get("/o")
    assert r.status == 504
    assert r.header("Cache-Status") == "eddy; fwd=stale; detail=error"
    assert statuses(e) == [(504, "MISS"), (200, "MISS"), (412, "HIT"),
                           (504, "EXPIRED")]
