"""Stale responses (cache.md, Freshness and stale responses): use_stale
when the upstream fails or answers an error, the response's own
stale-if-error and stale-while-revalidate windows, updating while
another request refreshes the key, and never stale after
must-revalidate (504)."""

import threading
import time

from proxy_backend import Backend, response

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main%s}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""


def start(eddy, port, proxy=""):
    return eddy((CONF % proxy).replace("@B@", str(port)))


def stale_after_down(eddy, cc, proxy, wait=2.2):
    """Stores /x with Cache-Control cc, stops the origin, waits until the
    entry is stale and asks again."""
    b = Backend(lambda req, conn: response(200, b"old", [("Cache-Control",
                                                          cc)]))
    b.__enter__()
    try:
        e = start(eddy, b.port, proxy)
        assert e.get("/x").header("X-Cache") == "MISS"
    finally:
        b.__exit__(None, None, None)
    time.sleep(wait)
    return e, e.get("/x")


def test_use_stale_error_serves_stale(eddy):
    e, r = stale_after_down(eddy, "max-age=1", ", use_stale: [error]")
    assert r.status == 200 and r.body == b"old"
    assert r.header("X-Cache") == "STALE"
    cs = r.header("Cache-Status")
    assert cs.startswith("eddy; fwd=stale; ttl=-")
    assert cs.endswith("; detail=stale-error")
    assert int(cs.split("ttl=")[1].split(";")[0]) <= -1
    assert int(r.header("Age")) >= 2


def test_without_use_stale_the_error_goes_out(eddy):
    e, r = stale_after_down(eddy, "max-age=1", "")
    assert r.status == 502


def test_stale_if_error_window_of_the_response(eddy):
    e, r = stale_after_down(eddy, "max-age=1, stale-if-error=60", "")
    assert r.status == 200 and r.header("X-Cache") == "STALE"


def test_stale_if_error_window_passed(eddy):
    e, r = stale_after_down(eddy, "max-age=1, stale-if-error=1", "",
                            wait=3.2)
    assert r.status == 502


def test_must_revalidate_is_never_stale(eddy):
    e, r = stale_after_down(eddy, "max-age=1, must-revalidate",
                            ", use_stale: [error]")
    assert r.status == 504


def test_s_maxage_only_in_its_own_windows(eddy):
    e, r = stale_after_down(eddy, "s-maxage=1", ", use_stale: [error]")
    assert r.status == 504
    e, r = stale_after_down(eddy, "s-maxage=1, stale-if-error=60",
                            ", use_stale: [error]")
    assert r.status == 200 and r.header("X-Cache") == "STALE"


def test_use_stale_on_an_error_status(eddy):
    state = {"fail": False}

    def handler(req, conn):
        if state["fail"]:
            return response(503, b"down", [("Cache-Control", "no-store")])
        return response(200, b"good", [("Cache-Control", "max-age=1")])

    with Backend(handler) as b:
        e = start(eddy, b.port, ", use_stale: [http_503]")
        e.get("/s")
        state["fail"] = True
        time.sleep(2.2)
        r = e.get("/s")
        assert r.status == 200 and r.body == b"good"
        assert r.header("X-Cache") == "STALE"
        assert len(b.requests) == 2
    with Backend(handler) as b:
        e = start(eddy, b.port, ", use_stale: [http_500]")
        state["fail"] = False
        e.get("/s")
        state["fail"] = True
        time.sleep(2.2)
        r = e.get("/s")
        assert r.status == 503 and r.body == b"down"


def updating_case(eddy, cc, proxy):
    state = {"slow": False}

    def handler(req, conn):
        if state["slow"]:
            time.sleep(1.5)
            return response(200, b"new", [("Cache-Control", cc)])
        return response(200, b"old", [("Cache-Control", cc)])

    with Backend(handler) as b:
        e = start(eddy, b.port, proxy)
        e.get("/u")
        state["slow"] = True
        time.sleep(2.2)
        out = {}

        def refresher():
            out["a"] = e.get("/u", timeout=10)

        t = threading.Thread(target=refresher)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        r = e.get("/u")
        took = time.monotonic() - t0
        t.join(10)
        return b, out["a"], r, took


def test_updating_serves_stale_while_another_refreshes(eddy):
    b, a, r, took = updating_case(eddy, "max-age=1", ", use_stale: [updating]"
                                  ", background_update: false")
    assert a.body == b"new" and a.header("X-Cache") == "EXPIRED"
    assert r.body == b"old" and r.header("X-Cache") == "UPDATING"
    assert r.header("Cache-Status").startswith("eddy; hit; ttl=-")
    assert r.header("Cache-Status").endswith("; detail=updating")
    assert took < 1.0
    assert len(b.requests) == 2


def test_stale_while_revalidate_window(eddy):
    b, a, r, took = updating_case(eddy, "max-age=1, stale-while-revalidate=30",
                                  ", background_update: false")
    assert r.body == b"old" and r.header("X-Cache") == "UPDATING"
    assert took < 1.0
    assert len(b.requests) == 2


def test_without_updating_requests_wait_for_the_refresh(eddy):
    b, a, r, took = updating_case(eddy, "max-age=1", "")
    assert r.body == b"new"
    assert r.header("Cache-Status") == \
        "eddy; fwd=stale; fwd-status=200; collapsed"
    assert len(b.requests) == 2


def test_background_update_stale_at_once_and_one_fetch(eddy):
    state = {"n": 0}

    def handler(req, conn):
        state["n"] += 1
        if state["n"] > 1:
            time.sleep(1.0)
        return response(200, b"v%d" % state["n"],
                        [("Cache-Control", "max-age=%d, "
                          "stale-while-revalidate=60"
                          % (1 if state["n"] == 1 else 60))])

    with Backend(handler) as b:
        e = start(eddy, b.port)
        assert e.get("/bg").body == b"v1"
        time.sleep(2.2)
        t0 = time.monotonic()
        rs = [e.get("/bg") for _ in range(3)]
        assert time.monotonic() - t0 < 0.8
        for r in rs:
            assert r.body == b"v1" and r.header("X-Cache") == "UPDATING"
            assert r.header("Cache-Status").endswith("; detail=updating")
        # One refresh, detached from any client, stores the new body.
        assert b.wait_requests(2)
        time.sleep(1.5)
        r = e.get("/bg")
        assert r.body == b"v2" and r.header("X-Cache") == "HIT"
        assert len(b.requests) == 2
        assert e.get("/bg").body == b"v2"
        assert "alert" not in e.all_logs()


def test_background_update_revalidates(eddy):
    def handler(req, conn):
        cc = [("Cache-Control", "max-age=1, stale-while-revalidate=60"),
              ("ETag", '"e1"')]
        if req.header("If-None-Match") == '"e1"':
            # The 304 renews the lifetime: fresh for a minute.
            return response(304, b"", [("Cache-Control", "max-age=60"),
                                       ("ETag", '"e1"')], length=False)
        return response(200, b"body", cc)

    with Backend(handler) as b:
        e = start(eddy, b.port)
        e.get("/bv")
        time.sleep(2.2)
        assert e.get("/bv").header("X-Cache") == "UPDATING"
        assert b.wait_requests(2)
        time.sleep(0.5)
        assert b.requests[1].header("If-None-Match") == '"e1"'
        r = e.get("/bv")
        assert r.header("X-Cache") == "HIT" and r.body == b"body"
        assert len(b.requests) == 2
