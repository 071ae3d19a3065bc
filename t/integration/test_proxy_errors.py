"""Proxy failures (http.md Proxy, config.md next_upstream): 502 and 504,
responses that end early, failover to the next server, backups, retries
and their limits, stale keep-alive connections."""

import socket
import threading
import time

from conftest import free_port, read_response, read_until_close, \
    split_response, wait_for
from proxy_backend import Backend, CLOSE, TAKEN, response


def conf(text, **ports):
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


ONE = """
    workers: 1
    access_log: {path: logs/access.log, format: "$status $upstream_addr $upstream_status"}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: "http://127.0.0.1:@B@", read_timeout: 400ms, connect_timeout: 400ms}
"""


def access_lines(e, n):
    lines = []

    def logged():
        lines[:] = e.log_text("logs/access.log").splitlines()
        return len(lines) >= n
    assert wait_for(logged, 5), lines
    return lines


def test_502_connection_refused(eddy):
    port = free_port()
    e = eddy(conf(ONE, B=port))
    for _ in range(3):
        r = e.get("/")
        assert r.status == 502
    assert "connect() to 127.0.0.1:%d failed" % port in e.all_logs()
    assert access_lines(e, 3)[0] == "502 127.0.0.1:%d 502" % port


def test_502_invalid_response_head(eddy):
    with Backend(lambda req, c: (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n"
                                 b"\r\n", CLOSE)) as b:
        e = eddy(conf(ONE, B=b.port))
        r = e.get("/")
        assert r.status == 502
        assert "invalid response head" in e.all_logs()


def test_502_length_conflict(eddy):
    with Backend(lambda req, c: (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n"
                                 b"0\r\n\r\n", CLOSE)) as b:
        e = eddy(conf(ONE, B=b.port))
        assert e.get("/").status == 502


def test_502_closed_without_response(eddy):
    with Backend(lambda req, c: CLOSE) as b:
        e = eddy(conf(ONE, B=b.port))
        assert e.get("/").status == 502
        assert "without a response" in e.all_logs()


def test_502_closed_mid_head(eddy):
    with Backend(lambda req, c: (b"HTTP/1.1 200 OK\r\nX-A: b\r\n", CLOSE)) as b:
        e = eddy(conf(ONE, B=b.port))
        assert e.get("/").status == 502


def test_504_read_timeout(eddy):
    def silent(req, conn):
        time.sleep(3)
        return CLOSE
    with Backend(silent) as b:
        e = eddy(conf(ONE, B=b.port))
        t = time.monotonic()
        r = e.get("/")
        assert r.status == 504
        assert time.monotonic() - t < 2.5
        assert "timed out while reading from" in e.all_logs()
        assert access_lines(e, 1)[0] == "504 127.0.0.1:%d 504" % b.port


def test_504_connect_timeout(eddy):
    # A listener whose backlog is full: SYNs are dropped, connect() hangs.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        e = eddy(conf(ONE, B=port))
        t = time.monotonic()
        r = e.get("/")
        assert r.status == 504
        assert time.monotonic() - t < 2.5
        assert "timed out while connecting to" in e.all_logs()
    finally:
        filler.close()
        lst.close()


def test_closed_mid_body_closes_client(eddy):
    """Never a truncated body that looks complete."""
    def short(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                     + b"x" * 100)
        time.sleep(0.2)
        return CLOSE
    with Backend(short) as b:
        e = eddy(conf(ONE, B=b.port))
        s = e.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data, closed = read_until_close(s, timeout=5)
        s.close()
        assert closed
        status, headers, body = split_response(data)
        assert status == 200 and headers["content-length"] == ["1000"]
        assert body == b"x" * 100


def test_chunked_cut_closes_client(eddy):
    def cut(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n")
        time.sleep(0.2)
        return CLOSE
    with Backend(cut) as b:
        e = eddy(conf(ONE, B=b.port))
        s = e.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data, closed = read_until_close(s, timeout=5)
        s.close()
        assert closed
        status, headers, body = split_response(data)
        assert status == 200
        # No last chunk: the client can tell the body is incomplete.
        assert body == b"5\r\nhello\r\n"


def test_invalid_chunked_body_with_head_is_502(eddy):
    """Read with the head, the bad body is known before anything went to
    the client (the cases below run it many times)."""
    with Backend(lambda req, c: (b"HTTP/1.1 200 OK\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n"
                                 b"5\r\nhello\r\nzz\r\n", CLOSE)) as b:
        e = eddy(conf(ONE, B=b.port))
        assert e.get("/").status == 502
        assert "invalid chunked body" in e.all_logs()


TWO = """
    workers: 1
    access_log: {path: logs/access.log, format: "$status $upstream_addr $upstream_status"}
    upstreams:
      app:
        servers:
          - {address: "127.0.0.1:@A@", max_fails: @F@}
          - {address: "127.0.0.1:@B@", max_fails: @F@}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: app, read_timeout: 500ms, @EXTRA@}
"""


def two(a, b, fails=1, extra="websocket: true"):
    return conf(TWO, A=a, B=b, F=fails, EXTRA=extra)


def test_failover_dead_server(eddy):
    with Backend() as b:
        # Chosen after the backend took its port, so never the same one.
        dead = free_port()
        while dead == b.port:
            dead = free_port()
        e = eddy(two(dead, b.port))
        for i in range(20):
            r = e.get("/r%d" % i)
            assert r.status == 200, i
        assert len(b.requests) == 20
        lines = access_lines(e, 20)
        # The first request tried the dead server, then the live one.
        assert lines[0] == "200 127.0.0.1:%d, 127.0.0.1:%d 502, 200" % (
            dead, b.port)
        # Then the dead one is left out for fail_timeout.
        assert all(line == "200 127.0.0.1:%d 200" % b.port
                   for line in lines[1:])
        assert "temporarily disabled" in e.all_logs()


def test_all_down_502_at_once(eddy):
    a, b = free_port(), free_port()
    e = eddy(two(a, b))
    assert e.get("/").status == 502
    t = time.monotonic()
    for _ in range(5):
        assert e.get("/").status == 502
    assert time.monotonic() - t < 2
    assert "no live upstreams" in e.all_logs()
    lines = access_lines(e, 6)
    assert lines[0].startswith("502 127.0.0.1:%d, 127.0.0.1:%d" % (a, b))
    assert lines[1].split() == ["502"]


def test_backup_server(eddy):
    dead = free_port()
    with Backend() as prim, Backend() as backup:
        e = eddy(conf("""
            workers: 1
            upstreams:
              app:
                servers:
                  - 127.0.0.1:@P@
                  - {address: 127.0.0.1:@K@, backup: true}
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: app}
            """, P=prim.port, K=backup.port))
        for _ in range(5):
            assert e.get("/").status == 200
        assert len(prim.requests) == 5 and len(backup.requests) == 0
    with Backend() as backup:
        e = eddy(conf("""
            workers: 1
            upstreams:
              app:
                servers:
                  - 127.0.0.1:@P@
                  - {address: 127.0.0.1:@K@, backup: true}
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: app}
            """, P=dead, K=backup.port))
        for _ in range(5):
            assert e.get("/").status == 200
        assert len(backup.requests) == 5


def status_handler(code):
    def h(req, conn):
        return response(code, b"from %d\n" % code)
    return h


def test_next_upstream_on_status(eddy):
    with Backend(status_handler(503)) as a, Backend() as b:
        e = eddy(two(a.port, b.port, fails=0,
                     extra="next_upstream: [error, timeout, 503]"))
        for _ in range(10):
            assert e.get("/").status == 200
        assert len(a.requests) >= 4 and len(b.requests) == 10
    with Backend(status_handler(503)) as a, Backend() as b:
        e = eddy(two(a.port, b.port, fails=0))
        codes = [e.get("/").status for _ in range(10)]
        # Not listed: the 503 goes to the client as it is.
        assert codes.count(503) == len(a.requests) > 0
        assert codes.count(200) == len(b.requests) > 0


def test_last_status_passed_when_no_server_left(eddy):
    with Backend(status_handler(503)) as a, Backend(status_handler(502)) as b:
        e = eddy(two(a.port, b.port, fails=0,
                     extra="next_upstream: [error, 502, 503]"))
        r = e.get("/")
        assert r.status in (502, 503)
        assert r.body in (b"from 502\n", b"from 503\n")
        assert len(a.requests) + len(b.requests) == 2


def test_non_idempotent_not_retried_once_sent(eddy):
    def drop(req, conn):
        return CLOSE
    with Backend(drop) as a, Backend() as b:
        e = eddy(two(a.port, b.port, fails=0))
        codes = [e.request("POST", "/p%d" % i, body=b"data").status
                 for i in range(10)]
        a_targets = {r.target for r in a.requests}
        b_targets = {r.target for r in b.requests}
        assert not (a_targets & b_targets)
        assert codes.count(502) == len(a_targets) > 0
        assert codes.count(200) == len(b_targets) > 0
        # GET is retried on the other server.
        for i in range(10):
            assert e.get("/g%d" % i).status == 200


def test_next_upstream_tries(eddy):
    ports = [free_port() for _ in range(3)]
    with Backend() as live:
        e = eddy(conf("""
            workers: 1
            access_log: {path: logs/access.log, format: "$status $upstream_addr"}
            upstreams:
              app:
                servers:
                  - {address: 127.0.0.1:@A@, max_fails: 0}
                  - {address: 127.0.0.1:@B@, max_fails: 0}
                  - {address: 127.0.0.1:@C@, max_fails: 0}
                  - {address: 127.0.0.1:@L@, max_fails: 0}
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: app, next_upstream_tries: 2}
            """, A=ports[0], B=ports[1], C=ports[2], L=live.port))
        r = e.get("/")
        assert r.status == 502
        line = access_lines(e, 1)[0]
        assert line == "502 127.0.0.1:%d, 127.0.0.1:%d" % (ports[0], ports[1])


def test_next_upstream_off(eddy):
    dead = free_port()
    with Backend() as b:
        e = eddy(two(dead, b.port, fails=0, extra="next_upstream: off"))
        codes = [e.get("/").status for _ in range(4)]
        assert codes.count(502) == 2 and codes.count(200) == 2


KEEP = """
    workers: 1
    upstreams:
      app:
        keepalive: 4
        keepalive_timeout: @T@
        servers: [127.0.0.1:@B@]
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: app}
"""


def test_stale_keepalive_connection_retried(eddy):
    """The upstream closes a kept connection as a request arrives on it:
    an idempotent request goes again on a fresh connection, invisibly; a
    POST, which the upstream may have acted on, is not sent again."""
    counts = {}
    lock = threading.Lock()

    def once_per_conn(req, conn):
        with lock:
            n = counts.get(req.conn_index, 0)
            counts[req.conn_index] = n + 1
        if n >= 1:
            return CLOSE
        return response(200, b"conn %d %s\n" % (req.conn_index, req.body))
    with Backend(once_per_conn) as b:
        e = eddy(conf(KEEP, B=b.port, T="60s"))
        for i in range(5):
            r = e.get("/%d" % i)
            assert r.status == 200 and r.body == b"conn %d \n" % i
        # A PUT is idempotent: its body is sent again.
        r = e.request("PUT", "/put", body=b"payload")
        assert r.status == 200 and r.body == b"conn 5 payload\n"
        assert b.connections == 6
        assert len(b.requests) == 11
        # Not a POST (test_proxy_retry.py has the cases).
        r = e.request("POST", "/post", body=b"payload")
        assert r.status == 502
        assert [q.target for q in b.requests].count("/post") == 1
        assert b.connections == 6


def test_idle_connection_closed_by_upstream(eddy):
    def close_later(req, conn):
        conn.sendall(response(200, b"ok"))
        time.sleep(0.1)
        return CLOSE
    with Backend(close_later) as b:
        e = eddy(conf(KEEP, B=b.port, T="60s"))
        for _ in range(3):
            assert e.get("/").status == 200
            time.sleep(0.3)
        assert b.connections == 3
        assert len(b.requests) == 3


def test_keepalive_timeout_closes_idle(eddy):
    with Backend() as b:
        e = eddy(conf(KEEP, B=b.port, T="200ms"))
        assert e.get("/").status == 200
        assert e.get("/").status == 200
        time.sleep(0.6)
        assert e.get("/").status == 200
        assert b.connections == 2


def test_keepalive_reuse_counted(eddy):
    with Backend() as b:
        e = eddy(conf(KEEP, B=b.port, T="60s"))
        s = e.connect()
        for i in range(50):
            s.sendall(b"GET /k%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
            assert split_response(read_response(s))[0] == 200
        s.close()
        for i in range(10):
            assert e.get("/n%d" % i).status == 200
        assert len(b.requests) == 60
        assert b.connections == 1
    with Backend() as b:
        e = eddy(conf(ONE, B=b.port))
        for i in range(10):
            assert e.get("/c%d" % i).status == 200
        assert b.connections == 10


def test_early_response_with_unread_body(eddy):
    """The upstream answers before reading the body: the client gets the
    answer, its body is discarded, its connection lives on."""
    def early(req, conn):
        return response(413, b"too big for me\n")
    with Backend(early) as b:
        b.handler = early
        e = eddy(conf(KEEP, B=b.port, T="60s"))
        s = e.connect()
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
                  b"\r\n0123456789")
        status, headers, body = split_response(read_response(s))
        assert status == 413 and body == b"too big for me\n"
        s.sendall(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        assert split_response(read_response(s))[0] == 413
        s.close()


def test_client_gone_midway(eddy):
    """A client that leaves while the upstream answers: no crash, the
    worker serves the next client."""
    def slow(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        try:
            for _ in range(100):
                conn.sendall(b"x" * 10000)
                time.sleep(0.005)
        except OSError:
            pass
        return TAKEN
    with Backend(slow) as b:
        e = eddy(conf(ONE, B=b.port))
        s = e.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        s.recv(100)
        s.close()
        time.sleep(0.2)
        b.handler = lambda req, c: response(200, b"fine")
        assert e.get("/").body == b"fine"


# A bad upstream body (http.md Proxy): a failure seen before the response
# head went to the client is a 502 (error_pages apply, the access log says
# 502); after it, every body byte read reaches the client, then the
# connection closes without a last chunk.  Each case runs many times: an
# outcome that depends on timing fails.

BODY_FAIL = """
    workers: 1
    access_log: {path: logs/access.log, format: "$status $upstream_status"}
    error_pages: {502: /oops}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: "http://127.0.0.1:@B@", read_timeout: 3s}
          = /oops:
            return: {status: 200, body: "upstream failed\\n"}
"""

CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
LENGTH_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"

# (name, head, body bytes, payload before the failure, failure seen only
# at the upstream's EOF)
BAD_BODIES = [
    ("size overflow", CHUNKED_HEAD,
     b"12345678123456789\r\n" + b"x" * 10 + b"\r\n0\r\n\r\n", b"", False),
    ("size above 2^63", CHUNKED_HEAD,
     b"5\r\nhello\r\n8000000000000000\r\nxx\r\n0\r\n\r\n", b"hello", False),
    ("bare LF size line", CHUNKED_HEAD, b"5\nhello\n0\n\n", b"", False),
    ("bare LF after data", CHUNKED_HEAD, b"5\r\nhello\n0\r\n\r\n", b"hello",
     False),
    ("NUL in trailer", CHUNKED_HEAD,
     b"5\r\nhello\r\n0\r\nX-T: a\x00b\r\n\r\n", b"hello", False),
    ("bare LF ending the body", CHUNKED_HEAD, b"5\r\nhello\r\n0\r\n\n",
     b"hello", False),
    ("chunk then EOF", CHUNKED_HEAD, b"41\r\n" + b"a" * 65 + b"\r\n",
     b"a" * 65, True),
    ("EOF inside a chunk", CHUNKED_HEAD, b"41\r\n" + b"b" * 30, b"b" * 30,
     True),
    ("EOF in the trailer", CHUNKED_HEAD, b"3\r\nabc\r\n0\r\nX-T: 1\r\n",
     b"abc", True),
    ("length then EOF", LENGTH_HEAD, b"c" * 65, b"c" * 65, True),
]

ROUNDS = 20


def corked_close(conn, data):
    """Sends data and closes in one segment (the FIN rides on the data),
    so eddy reads both in the same turn."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    conn.sendall(data)


def wait_closed(conn):
    """Keeps the connection open until eddy closes it."""
    conn.settimeout(5)
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


def decode_chunked_prefix(data):
    """The payload of eddy's chunked body, and whether it ended with the
    last chunk; complete chunks only (eddy writes whole chunks)."""
    payload = b""
    while data:
        line, sep, rest = data.partition(b"\r\n")
        assert sep, data[:80]
        size = int(line, 16)
        if size == 0:
            return payload, True
        assert rest[size:size + 2] == b"\r\n", data[:80]
        payload += rest[:size]
        data = rest[size + 2:]
    return payload, False


def test_regress_bad_body_before_head_is_502(eddy):
    """Head and bad body in one write (with or without the upstream's
    close): nothing was sent, so the client gets the 502 error page."""
    def handler(req, conn):
        name, head, body, _, _ = BAD_BODIES[int(req.target[1:].rstrip("c"))
                                            // 1000]
        if req.target.endswith("c"):
            corked_close(conn, head + body)
            return CLOSE
        conn.sendall(head + body)
        wait_closed(conn)
        return CLOSE
    with Backend(handler) as b:
        e = eddy(conf(BODY_FAIL, B=b.port))
        n = 0
        for i, (name, _, _, _, at_eof) in enumerate(BAD_BODIES):
            for close in (True, False) if not at_eof else (True,):
                for k in range(ROUNDS):
                    s = e.connect()
                    s.sendall(b"GET /%d%s HTTP/1.1\r\nHost: a\r\n\r\n"
                              % (i * 1000 + k, b"c" if close else b""))
                    status, headers, body = split_response(
                        read_response(s))
                    s.close()
                    assert (status, body) == (502, b"upstream failed\n"), \
                        (name, close, k, status, body)
                    n += 1
        lines = access_lines(e, n)
        assert lines == ["502 200"] * n
        assert "invalid chunked body" in e.all_logs()
        assert "closed the connection while sending the response body" \
            in e.all_logs()


def test_regress_bad_body_after_head_truncates(eddy):
    """The head went out first: the body bytes read before the failure
    all reach the client, then the connection closes, visibly short."""
    go = {}

    def handler(req, conn):
        i = int(req.target[1:].rstrip("c")) // 1000
        close = req.target.endswith("c")
        _, head, body, _, _ = BAD_BODIES[i]
        conn.sendall(head)
        # The rest only once the client holds the head.
        assert go[req.target].wait(5)
        if close:
            corked_close(conn, body)
        else:
            conn.sendall(body)
            wait_closed(conn)
        return CLOSE
    with Backend(handler) as b:
        e = eddy(conf(BODY_FAIL, B=b.port))
        n = 0
        for i, (name, head, _, payload, at_eof) in enumerate(BAD_BODIES):
            for close in (True, False) if not at_eof else (True,):
                for k in range(ROUNDS):
                    target = "/%d%s" % (i * 1000 + k, "c" if close else "")
                    go[target] = threading.Event()
                    s = e.connect()
                    s.sendall(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n"
                              % target.encode())
                    s.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        got = s.recv(65536)
                        assert got, (name, data)
                        data += got
                    go[target].set()
                    more, closed = read_until_close(s, timeout=5)
                    s.close()
                    data += more
                    assert closed, (name, close, k)
                    status, headers, body = split_response(data)
                    assert status == 200, (name, k)
                    if head is LENGTH_HEAD:
                        assert headers["content-length"] == ["100"]
                        assert body == payload, (name, k, body)
                    else:
                        assert headers["transfer-encoding"] == ["chunked"]
                        assert decode_chunked_prefix(body) == \
                            (payload, False), (name, close, k, body)
                    n += 1
        # Logged as what the client got: a 200, cut short.
        lines = access_lines(e, n)
        assert lines == ["200 200"] * n
