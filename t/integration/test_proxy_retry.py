"""Which requests are sent again (config.md next_upstream): an idempotent
method (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) may go to another server
or on a fresh connection after a failure; any other method only when no
byte of it reached an upstream.  Every retry path keeps to that rule: a
kept-alive connection found closed, next_upstream error, timeout and
5xx."""

import socket
import struct
import threading

import pytest

from conftest import free_port, wait_for
from proxy_backend import Backend, CLOSE, response
from tlsutil import OPENSSL, pki  # noqa: F401 (a fixture)


def conf(text, **ports):
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


KEEP = """
    workers: 1
    access_log: {path: logs/access.log, format: "$request_method $status $upstream_status"}
    upstreams:
      app:
        keepalive: 4
        keepalive_timeout: 60s
        servers: [127.0.0.1:@B@]
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: app, read_timeout: 2s}
"""


class SecondDropped:
    """A backend handler that answers the first request of a connection
    and closes the kept-alive connection right after reading the second
    one, without answering (or with a reset when rst is set).  It counts
    requests by method and target."""

    def __init__(self, rst=False):
        self.rst = rst
        self.lock = threading.Lock()
        self.per_conn = {}
        self.seen = {}

    def __call__(self, req, conn):
        with self.lock:
            n = self.per_conn.get(req.conn_index, 0)
            self.per_conn[req.conn_index] = n + 1
            key = (req.method, req.target)
            self.seen[key] = self.seen.get(key, 0) + 1
        if n == 0:
            body = b"%s %s conn %d\n" % (req.method.encode(),
                                        req.target.encode(), req.conn_index)
            return response(200, b"" if req.method == "HEAD" else body)
        if self.rst:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        return CLOSE

    def count(self, method, target):
        with self.lock:
            return self.seen.get((method, target), 0)


def access_lines(e, n):
    lines = []

    def logged():
        lines[:] = e.log_text("logs/access.log").splitlines()
        return len(lines) >= n
    assert wait_for(logged, 5), lines
    return lines


def test_regress_non_idempotent_not_replayed_on_stale_connection(eddy):
    """A kept-alive connection that closes after the backend read the
    request: POST, PATCH and an unknown method are answered 502 and reach
    the backend once; nothing is sent again on a new connection."""
    for rst in (False, True):
        h = SecondDropped(rst=rst)
        with Backend(h) as b:
            e = eddy(conf(KEEP, B=b.port))
            cases = [("POST", b"payload"), ("PATCH", b"x" * 3000),
                     ("POST", b""), ("LOCK", b"<lock/>")]
            for i, (method, body) in enumerate(cases * 3):
                assert e.get("/warm%d" % i).status == 200
                target = "/op%d" % i
                r = e.request(method, target, body=body)
                assert r.status == 502, (rst, method, r)
                assert h.count(method, target) == 1, (rst, method)
            # Each warm-up opened a connection and each failed request
            # died on it: no connection was opened to replay anything.
            assert b.connections == len(cases) * 3
            lines = access_lines(e, 2 * len(cases) * 3)
            assert [l for l in lines if not l.startswith("GET ")] == \
                ["%s 502 502" % m for m, _ in cases * 3]


def test_idempotent_retried_on_stale_connection(eddy):
    """The same failure for GET, HEAD, PUT, DELETE, OPTIONS: sent again on
    a fresh connection, and answered."""
    h = SecondDropped()
    with Backend(h) as b:
        e = eddy(conf(KEEP, B=b.port))
        methods = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]
        for i, method in enumerate(methods * 2):
            assert e.get("/warm%d" % i).status == 200
            target = "/op%d" % i
            body = b"put body" if method == "PUT" else None
            r = e.request(method, target, body=body)
            assert r.status == 200, (method, r)
            if method != "HEAD":
                assert r.body.startswith(b"%s %s conn " % (
                    method.encode(), target.encode())), r
            # Once on the stale connection, once on the fresh one.
            assert h.count(method, target) == 2, method


TWO = """
    workers: 1
    access_log: {path: logs/access.log, format: "$request_method $status $upstream_addr $upstream_status"}
    upstreams:
      app:
        servers:
          - {address: "127.0.0.1:@A@", max_fails: 0}
          - {address: "127.0.0.1:@B@", max_fails: 0}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: app, read_timeout: 300ms, connect_timeout: 300ms, next_upstream: [@NEXT@]}
"""


def test_post_retried_when_connect_failed(eddy):
    """A POST whose connection was refused sent no byte: the next server
    gets it, once."""
    dead = free_port()
    with Backend() as b:
        while dead == b.port:
            dead = free_port()
        e = eddy(conf(TWO, A=dead, B=b.port, NEXT="error"))
        for i in range(8):
            r = e.request("POST", "/p%d" % i, body=b"data %d" % i)
            assert r.status == 200, r
            assert r.body == b"POST /p%d\ndata %d" % (i, i)
        assert sorted(q.target for q in b.requests) == \
            sorted("/p%d" % i for i in range(8))
        lines = access_lines(e, 8)
        # Round robin put the dead server first for half of them.
        assert sum(1 for l in lines if l == "POST 200 127.0.0.1:%d, "
                   "127.0.0.1:%d 502, 200" % (dead, b.port)) == 4, lines


def test_post_retried_when_connect_timed_out(eddy):
    """A connect timeout sent no byte either."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    port = lst.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    try:
        with Backend() as b:
            e = eddy(conf(TWO, A=port, B=b.port, NEXT="error, timeout"))
            for i in range(4):
                r = e.request("POST", "/t%d" % i, body=b"x")
                assert r.status == 200, r
            assert len(b.requests) == 4
            lines = access_lines(e, 4)
            assert any("127.0.0.1:%d 504, 200" % b.port in l
                       for l in lines), lines
    finally:
        filler.close()
        lst.close()


def test_post_not_retried_after_timeout_or_status(eddy):
    """Read by the first server, then a read timeout (504) or a listed
    503 (passed on): the second server never sees the POST, while a GET
    goes on to it."""
    def slow(req, conn):
        if req.method == "POST":
            threading.Event().wait(1)
            return CLOSE
        return CLOSE

    for handler, next_, status in (
            (slow, "error, timeout", 504),
            (lambda req, c: response(503, b"busy\n"), "error, 503", 503)):
        with Backend(handler) as a, Backend() as b:
            e = eddy(conf(TWO, A=a.port, B=b.port, NEXT=next_))
            codes = [e.request("POST", "/p%d" % i, body=b"d").status
                     for i in range(4)]
            a_t = [q.target for q in a.requests]
            b_t = [q.target for q in b.requests]
            assert not set(a_t) & set(b_t)
            assert len(a_t) == 2 and codes.count(status) == 2, codes
            assert codes.count(200) == 2 and len(b_t) == 2
            for i in range(4):
                assert e.get("/g%d" % i).status == 200


class Slam:
    """Accepts connections and closes them at once."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # shutdown() wakes the accept() of _run; after a bare close() a
        # signal restarts it on the descriptor number, which a later
        # test's socket may have taken by then.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command is needed")
def test_regress_post_retried_when_tls_handshake_failed(eddy, pki):
    """Over TLS the request waits for the handshake: one that failed (a
    certificate that does not verify, a server that closes) sent no
    byte, so a POST goes on to the next server."""
    import ssl

    def ctx(name):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(pki.path(name + ".pem"), pki.path(name + ".key"))
        return c

    with Backend(tls=ctx("a")) as wrong, Slam() as slam, \
            Backend(tls=ctx("localhost")) as good:
        for bad in (wrong, slam):
            good.requests.clear()
            e = eddy(conf("""
                workers: 1
                upstreams:
                  app:
                    servers:
                      - {address: "127.0.0.1:@A@", max_fails: 0}
                      - {address: "127.0.0.1:@B@", max_fails: 0}
                servers:
                  - listen: 127.0.0.1:{port}
                    locations:
                      /:
                        proxy: {pass: "https://app", tls_ca: @CA@}
                """, A=bad.port, B=good.port, CA=pki.ca))
            for i in range(6):
                r = e.request("POST", "/h%d" % i, body=b"d%d" % i)
                assert r.status == 200, (bad, r)
                assert r.body == b"POST /h%d\nd%d" % (i, i)
            assert [q.target for q in good.requests] == \
                ["/h%d" % i for i in range(6)]
        assert wrong.requests == [] and len(wrong.tls_info) >= 3
        assert slam.accepted >= 3


def test_regress_chunked_body_resent_chunked(eddy):
    """A chunked PUT read whole, forwarded, then dropped by the first
    server without an answer: the second server gets it again framed as
    it was sent, Transfer-Encoding: chunked and the same body (before,
    the resent head had no framing field once the client's body was
    over, and the chunks followed as a bogus second request)."""
    with Backend(lambda req, c: CLOSE) as a, Backend() as b:
        e = eddy(conf(TWO, A=a.port, B=b.port, NEXT="error"))
        for i in range(4):
            data, _ = e.raw_ex(
                b"PUT /c%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n" % i)
            assert data.startswith(b"HTTP/1.1 200 "), data
            assert data.endswith(b"PUT /c%d\nhello, world" % i), data
        # Round robin gave the first server half of them: each came again.
        assert len(a.requests) == 2
        assert sorted(q.target for q in b.requests) == \
            ["/c0", "/c1", "/c2", "/c3"]
        for q in b.requests:
            assert q.header("Transfer-Encoding") == "chunked", q.head
            assert q.header("Content-Length") is None, q.head
            assert q.raw_body == b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
