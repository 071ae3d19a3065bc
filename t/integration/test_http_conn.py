"""Connections and responses (http.md, "Connections" and "Responses"):
keep-alive, HTTP/1.0, pipelining, slow clients, keepalive_requests,
timeouts, Date/Server, HEAD, 204, error pages, closing after errors."""

import re
import select
import socket
import time

import pytest

from httputil import (Client, assert_error_closed, exchange, get, parse_all,
                      parse_one, request)

CONFIG = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /nocontent:
        return: 204
      = /gone:
        return: 410
      = /teapot:
        return: {status: 418, body: "short and stout\\n"}
      /:
        return: {status: 200, body: "$request_uri\\n"}
"""

TIMEOUTS = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    client_header_timeout: 1s
    keepalive_timeout: 1s
    client_body_timeout: 1s
    locations:
      /:
        return: {status: 200, body: "$request_uri\\n"}
"""

DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                     r"\d{4} \d\d:\d\d:\d\d GMT$")


@pytest.fixture
def srv(eddy):
    return eddy(CONFIG)


@pytest.fixture
def slow(eddy):
    return eddy(TIMEOUTS)


# --------------------------------------------------------------------------
# keep-alive


def test_http11_keepalive_by_default(srv):
    with Client(srv.port) as c:
        for i in range(4):
            c.send(get("/k%d" % i))
            r = c.response()
            assert r.status == 200 and r.body == b"/k%d\n" % i
            assert not r.closes, r
        c.send(get("/last", close=True))
        r = c.response()
        assert r.body == b"/last\n"
        assert r.closes
        assert c.wait_closed(3) == b""


def test_connection_close_honoured(srv):
    data, closed = exchange(srv.port, get("/c", close=True)
                            + get("/never"))
    assert closed
    rs, rest = parse_all(data)
    assert len(rs) == 1 and rest == b"", data
    assert rs[0].body == b"/c\n"
    assert rs[0].closes
    assert b"/never" not in data


@pytest.mark.parametrize("value", [b"CLOSE", b"keep-alive, close",
                                   b"foo,close", b" close "])
def test_connection_close_token_forms(srv, value):
    data, closed = exchange(srv.port, b"GET /c HTTP/1.1\r\nHost: a\r\n"
                                      b"Connection: " + value + b"\r\n\r\n")
    assert closed, "connection kept open with Connection: %r" % value
    r = parse_one(data)
    assert r.status == 200 and r.closes


def test_http10_closes_by_default(srv):
    data, closed = exchange(srv.port, b"GET /ten HTTP/1.0\r\n\r\n"
                                      + b"GET /never HTTP/1.0\r\n\r\n")
    assert closed
    r = parse_one(data)
    assert r.status == 200 and r.body == b"/ten\n"
    assert "keep-alive" not in r.tokens("Connection")


def test_http10_keepalive_on_request(srv):
    with Client(srv.port) as c:
        for i in range(3):
            c.send(b"GET /ka%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                   % i)
            r = c.response()
            assert r.status == 200 and r.body == b"/ka%d\n" % i
            assert "keep-alive" in r.tokens("Connection"), r
            assert r.header("Content-Length") == str(len(r.body))
        c.send(b"GET /end HTTP/1.0\r\n\r\n")
        r = c.response()
        assert r.body == b"/end\n"
        assert "keep-alive" not in r.tokens("Connection")
        c.wait_closed(3)


def test_http10_keepalive_case_insensitive(srv):
    with Client(srv.port) as c:
        c.send(b"GET /a HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n")
        r = c.response()
        assert "keep-alive" in r.tokens("Connection")
        c.send(b"GET /b HTTP/1.0\r\n\r\n")
        assert c.response().body == b"/b\n"


# --------------------------------------------------------------------------
# pipelining


def test_pipelining_in_one_send(srv):
    n = 8
    data = b"".join(get("/p%d" % i) for i in range(n - 1))
    data += get("/p%d" % (n - 1), close=True)
    out, closed = exchange(srv.port, data)
    assert closed
    rs, rest = parse_all(out)
    assert rest == b""
    assert [r.body for r in rs] == [b"/p%d\n" % i for i in range(n)]
    assert all(r.status == 200 for r in rs)


def test_pipelining_mixed_statuses_and_head(srv):
    data = (get("/one") + get("/nocontent") + get("/teapot")
            + get("/two", method="HEAD") + get("/gone")
            + get("/three", close=True))
    with Client(srv.port) as c:
        c.send(data)
        rs = c.responses(6, head_indexes=(3,))
        assert [r.status for r in rs] == [200, 204, 418, 200, 410, 200]
        assert rs[0].body == b"/one\n"
        assert rs[1].body == b""
        assert rs[2].body == b"short and stout\n"
        assert rs[3].body == b"" and rs[3].header("Content-Length") == "5"
        assert b"410" in rs[4].body
        assert rs[5].body == b"/three\n"
        assert c.wait_closed(3) == b""


def test_pipelining_many_requests(srv):
    n = 100
    data = b"".join(get("/r%d" % i) for i in range(n))
    with Client(srv.port) as c:
        c.send(data)
        rs = c.responses(n, timeout=10)
        assert [r.body for r in rs] == [b"/r%d\n" % i for i in range(n)]


def test_pipelining_split_across_sends(srv):
    data = get("/s1") + get("/s2") + get("/s3", close=True)
    with Client(srv.port) as c:
        # Cut in the middle of the second request line.
        cut = len(get("/s1")) + 6
        c.send(data[:cut])
        time.sleep(0.05)
        c.send(data[cut:])
        rs = c.responses(3)
        assert [r.body for r in rs] == [b"/s1\n", b"/s2\n", b"/s3\n"]


def test_byte_by_byte_request(srv):
    with Client(srv.port) as c:
        c.send_slowly(b"GET /slow?q=1 HTTP/1.1\r\nHost: a\r\n"
                      b"X-Filler: abc\r\n\r\n", step=1, delay=0.002)
        r = c.response()
        assert r.status == 200 and r.body == b"/slow?q=1\n"
        # And a second one on the same connection, also dribbled.
        c.send_slowly(get("/again", close=True), step=1, delay=0.001)
        r = c.response()
        assert r.body == b"/again\n"


def test_byte_by_byte_with_body(srv):
    with Client(srv.port) as c:
        c.send_slowly(b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                      b"\r\nbody" + get("/next"), step=1, delay=0.001)
        r1, r2 = c.responses(2)
        assert r1.body == b"/b\n" and r2.body == b"/next\n"


def test_keepalive_requests_limit(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            keepalive_requests: 3
            locations:
              /:
                return: {status: 200, body: "$request_uri\\n"}
    """)
    with Client(e.port) as c:
        c.send(get("/1") + get("/2") + get("/3") + get("/4"))
        rs = [c.response() for _ in range(3)]
        assert [r.body for r in rs] == [b"/1\n", b"/2\n", b"/3\n"]
        assert not rs[0].closes and not rs[1].closes
        assert rs[2].closes, rs[2]
        rest = c.wait_closed(3)
        assert rest == b"", "a fourth response was sent: %r" % rest


# --------------------------------------------------------------------------
# timeouts (1 s)


def test_client_header_timeout_partial_head(slow):
    with Client(slow.port) as c:
        c.send(b"GET /partial HTTP/1.1\r\nHost: a\r\n")
        t0 = time.monotonic()
        data, closed = c.read_until_close(4)
        elapsed = time.monotonic() - t0
    assert closed, "connection still open: %r" % data
    assert 0.5 < elapsed < 2.5, elapsed
    assert_error_closed(data, closed, 408)


def test_client_header_timeout_slow_drip(slow):
    """Slow-loris: a byte every 200 ms keeps the connection busy but the
    head is not complete within client_header_timeout."""
    head = get("/drip") + b"X-Pad: " + b"p" * 50
    s = socket.create_connection(("127.0.0.1", slow.port), timeout=5)
    data = b""
    closed = False
    i = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 4 and not closed:
            readable, _, _ = select.select([s], [], [], 0.2)
            if readable:
                try:
                    b = s.recv(65536)
                except OSError:
                    b = b""
                if not b:
                    closed = True
                data += b
                continue
            if i < len(head):
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    pass
                i += 1
    finally:
        s.close()
    elapsed = time.monotonic() - t0
    assert closed, "slow head not cut off: %r" % data
    assert elapsed < 2.5, elapsed
    assert i < len(head)
    rs, _ = parse_all(data)
    assert rs and rs[0].status == 408, data


def test_new_connection_without_request_closed(slow):
    with Client(slow.port) as c:
        t0 = time.monotonic()
        data, closed = c.read_until_close(4)
        elapsed = time.monotonic() - t0
    assert closed
    assert elapsed < 2.5, elapsed
    if data:
        assert parse_one(data).status == 408


def test_keepalive_timeout_closes_silently(slow):
    with Client(slow.port) as c:
        c.send(get("/first"))
        assert c.response().body == b"/first\n"
        t0 = time.monotonic()
        data, closed = c.read_until_close(4)
        elapsed = time.monotonic() - t0
    assert closed, "idle keep-alive connection not closed"
    assert data == b"", "bytes sent on an idle close: %r" % data
    assert 0.5 < elapsed < 2.5, elapsed


def test_keepalive_timeout_not_hit_when_busy(slow):
    """Requests 0.5 s apart on one connection: each resets the idle
    timer."""
    with Client(slow.port) as c:
        for i in range(4):
            c.send(get("/busy%d" % i))
            assert c.response().body == b"/busy%d\n" % i
            time.sleep(0.4)


SLOW_HEAD = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    client_header_timeout: 3s
    keepalive_timeout: 1s
    locations:
      /:
        return: {status: 200, body: "$request_uri\\n"}
"""


def test_head_started_on_idle_connection_gets_header_timeout(eddy):
    """A request head that starts arriving on an idle keep-alive
    connection is bounded by client_header_timeout from then on, not cut
    off when keepalive_timeout ends."""
    e = eddy(SLOW_HEAD)
    with Client(e.port) as c:
        c.send(get("/first"))
        assert c.response().body == b"/first\n"
        time.sleep(0.5)
        c.send(b"GET /second HTTP/1.1\r\nHost: a\r\n")
        time.sleep(1.5)                 # past keepalive_timeout
        c.send(b"X-Late: yes\r\n\r\n")
        assert c.response().body == b"/second\n"


def test_head_started_on_idle_connection_ends_in_408(eddy):
    e = eddy(SLOW_HEAD)
    with Client(e.port) as c:
        c.send(get("/first"))
        assert c.response().body == b"/first\n"
        time.sleep(0.3)
        c.send(b"GET /never-ends HTTP/1.1\r\nHost: a\r\n")
        t0 = time.monotonic()
        data, closed = c.read_until_close(6)
        elapsed = time.monotonic() - t0
    assert closed
    # keepalive_timeout first (0.7 s left), then client_header_timeout.
    assert 2.5 < elapsed < 5, elapsed
    assert parse_one(data).status == 408


def test_client_body_timeout_body_never_arrives(slow):
    with Client(slow.port) as c:
        c.send(b"POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n"
               b"\r\n0123456789")
        t0 = time.monotonic()
        data, closed = c.read_until_close(4)
        elapsed = time.monotonic() - t0
    assert closed, "connection open although the body never came"
    assert elapsed < 2.5, elapsed
    rs, rest = parse_all(data)
    # The return handler may answer before the body; nothing else may come
    # than that answer and/or a 408.
    assert rest == b""
    for r in rs:
        assert r.status in (200, 408), r
    assert not rs or rs[-1].status == 408 or rs[-1].body == b"/body\n"


# --------------------------------------------------------------------------
# responses: Date, Server, HEAD, 204, error pages


@pytest.mark.parametrize("data,status", [
    (get("/x"), 200),
    (get("/nocontent"), 204),
    (get("/teapot"), 418),
    (get("/gone"), 410),
    (b"GET /x HTTP/1.0\r\n\r\n", 200),
    (b"BAD\x01 / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"CONNECT a:1 HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    (b"GET / HTTP/1.1\r\n\r\n", 400),
], ids=["200", "204", "418", "410", "http10", "400", "505", "405",
        "no-host"])
def test_date_and_server_on_every_response(srv, data, status):
    out, closed = exchange(srv.port, data + get("/end", close=True))
    rs, rest = parse_all(out)
    assert rs and rs[0].status == status, out
    for r in rs:
        dates = r.headers_all("Date")
        assert len(dates) == 1 and DATE_RE.match(dates[0]), r
        servers = r.headers_all("Server")
        assert len(servers) == 1, r
        assert re.match(r"^eddy/\d+\.\d+\.\d+$", servers[0]), servers


def test_server_tokens_false(eddy):
    e = eddy("""
        workers: 1
        server_tokens: false
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
    """)
    r, _, _ = request(e.port, get("/", close=True))
    assert r.headers_all("Server") == ["eddy"]
    out, closed = exchange(e.port, b"GET / HTTP/7.0\r\nHost: a\r\n\r\n")
    r = parse_one(out)
    assert r.status == 505
    assert r.headers_all("Server") == ["eddy"]
    assert b"eddy/" not in out


def test_server_tokens_false_per_server(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            names: [quiet.test]
            server_tokens: false
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
          - listen: 127.0.0.1:{port}
            names: [loud.test]
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
    """)
    r, _, _ = request(e.port, get("/", host="quiet.test", close=True))
    assert r.header("Server") == "eddy"
    r, _, _ = request(e.port, get("/", host="loud.test", close=True))
    assert re.match(r"^eddy/\d+\.\d+\.\d+$", r.header("Server"))


def _comparable(r):
    return sorted((k.lower(), v) for k, v in r.headers
                  if k.lower() != "date")


@pytest.mark.parametrize("path", ["/hello", "/teapot", "/gone"])
def test_head_same_headers_as_get(srv, path):
    with Client(srv.port) as c:
        c.send(get(path))
        g = c.response()
        c.send(get(path, method="HEAD"))
        h = c.response(head_request=True)
        assert h.status == g.status
        assert h.header("Content-Length") == str(len(g.body))
        assert _comparable(h) == _comparable(g)
        # No body followed the HEAD answer: the next response parses.
        c.send(get("/after", close=True))
        r = c.response()
        assert r.body == b"/after\n"
        assert c.wait_closed(3) == b""


def test_head_http10_no_body(srv):
    out, closed = exchange(srv.port, b"HEAD /h HTTP/1.0\r\n\r\n")
    assert closed
    head, sep, body = out.partition(b"\r\n\r\n")
    assert sep and body == b"", out
    r = parse_one(out, head_request=True)
    assert r.header("Content-Length") == "3"


def test_204_no_length_no_body(srv):
    with Client(srv.port) as c:
        c.send(get("/nocontent") + get("/after", close=True))
        r = c.response()
        assert r.status == 204
        assert not r.has("Content-Length"), r
        assert not r.has("Transfer-Encoding"), r
        r2 = c.response()
        assert r2.body == b"/after\n", "204 carried a body: %r" % r2.raw


@pytest.mark.parametrize("data,status,text", [
    (b"GET / HTTP/1.1\r\n\r\n", 400, b"Bad Request"),
    (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505, b"HTTP Version Not Supported"),
    (b"CONNECT a:1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 405,
     b"Method Not Allowed"),
    (b"GET /gone HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 410,
     b"Gone"),
], ids=["400", "505", "405", "410"])
def test_error_responses_have_html_body(srv, data, status, text):
    out, closed = exchange(srv.port, data)
    rs, _ = parse_all(out)
    assert rs, out
    r = rs[0]
    assert r.status == status
    assert r.header("Content-Type", "").startswith("text/html"), r
    assert r.header("Content-Length") == str(len(r.body))
    assert str(status).encode() in r.body and text in r.body, r.body
    assert b"<html" in r.body.lower()
    assert len(r.body) < 1024


# --------------------------------------------------------------------------
# the connection is closed after an error caused by malformed input


@pytest.mark.parametrize("bad", [
    b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /../x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Fold: a\r\n b\r\n\r\n",
], ids=["no-colon", "space-colon", "no-host", "two-hosts", "climb",
        "bad-cl", "cl-te", "obs-fold"])
def test_closed_after_malformed_request(srv, bad):
    """Valid requests follow the bad one in the same send: none of them is
    answered."""
    out, closed = exchange(srv.port, bad + get("/next") + get("/next2"))
    assert_error_closed(out, closed, 400)
    assert b"/next" not in out


def test_closed_after_malformed_request_on_keepalive_connection(srv):
    with Client(srv.port) as c:
        c.send(get("/good"))
        assert c.response().body == b"/good\n"
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad\x00: v\r\n\r\n"
               + get("/next"))
        data = c.wait_closed(3)
        assert_error_closed(data, True, 400)
        assert b"/next" not in data


def test_not_closed_after_normal_error_status(srv):
    """A 4xx from a handler (well-formed request) keeps the connection."""
    with Client(srv.port) as c:
        c.send(get("/gone"))
        r = c.response()
        assert r.status == 410 and not r.closes
        c.send(get("/still"))
        assert c.response().body == b"/still\n"


@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_half_closed_client_still_answered(srv, version):
    """The client sends its request and shuts its write side (as `nc -N`
    does): the answer still comes, every time."""
    for i in range(10):
        out, closed = exchange(srv.port, get("/half%d" % i,
                                             version=version),
                               shut_wr=True)
        rs, _ = parse_all(out)
        assert rs and rs[0].body == b"/half%d\n" % i, \
            "attempt %d: no answer to a half-closed HTTP/%s request: %r" % (
                i, version, out)
        assert closed


def test_half_closed_client_pipelined(srv):
    for i in range(10):
        out, closed = exchange(srv.port, get("/h1") + get("/h2")
                               + get("/h3"), shut_wr=True)
        rs, _ = parse_all(out)
        assert [r.body for r in rs] == [b"/h1\n", b"/h2\n", b"/h3\n"], \
            "attempt %d: %r" % (i, out)
        assert closed


# --------------------------------------------------------------------------
# unread bodies: discarded to keep the connection, but never more than
# client_max_body_size; a refused body is not drained whole either

BODIES = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    client_max_body_size: 1m
    client_body_timeout: 5s
    locations:
      /:
        return: {status: 200, body: "$request_uri\\n"}
"""

FLOOD = 64 * 1024 * 1024


@pytest.fixture
def bodies(eddy):
    return eddy(BODIES)


def flood(port, head, pieces, total, after=b""):
    """Sends head, then pieces() until total bytes went out, then after,
    from a thread, while this one reads what comes back. Returns (data,
    closed, sent, send_error): what arrived until the peer closed (or 20 s
    passed), how much of the body the kernel took before sending failed.
    Nothing the peer does not read can be sent: past the socket buffers
    (a few MiB) a send blocks until eddy reads on or closes."""
    import threading
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    result = {"sent": 0, "error": None}

    def sender():
        try:
            s.sendall(head)
            while result["sent"] < total:
                p = pieces()
                s.sendall(p)
                result["sent"] += len(p)
            s.sendall(after)
        except OSError as exc:
            result["error"] = exc

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    data = b""
    closed = False
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not b:
                closed = True
                break
            data += b
        t.join(20)
        assert not t.is_alive(), "the sender is still blocked"
    finally:
        s.close()
    return data, closed, result["sent"], result["error"]


def test_regress_unread_chunked_body_bounded(bodies):
    """A GET whose chunked body nobody reads: eddy answers, drops up to
    client_max_body_size (1m) of it, then closes without reading on. It
    used to read all 64 MiB and answer the request behind it."""
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    data, closed, sent, err = flood(
        bodies.port,
        b"GET /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        lambda: chunk, FLOOD, b"0\r\n\r\n" + get("/second"))
    rs, rest = parse_all(data)
    assert rs and rs[0].status == 200 and rs[0].body == b"/first\n", data
    assert b"/second" not in data
    assert closed
    assert err is not None and sent < FLOOD, (sent, err)


@pytest.mark.parametrize("chunk", [
    b"1;" + b"e" * 4000 + b"\r\nx\r\n",
    b"1;" + b"e" * 4000 + b"=\"" + b"v" * 90 + b"\"\r\nx\r\n",
], ids=["long-extension", "long-quoted-extension"])
def test_regress_unread_chunk_extensions_bounded(bodies, chunk):
    """Framing counts: 1-byte chunks with 4000-byte extensions (each
    within the parser's per-line limit) carry 16 KiB of body in 64 MiB;
    eddy stops at 1 MiB of them."""
    data, closed, sent, err = flood(
        bodies.port,
        b"GET /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        lambda: chunk * 16, FLOOD, b"0\r\n\r\n" + get("/second"))
    rs, rest = parse_all(data)
    assert rs and rs[0].status == 200, data
    assert b"/second" not in data
    assert closed
    assert err is not None and sent < FLOOD, (sent, err)


def test_regress_refused_content_length_body_not_drained(bodies):
    """Content-Length over the limit: 413 before reading, Connection:
    close, and the lingering close that lets the answer arrive drains a
    bounded amount (it used to take everything for 2 s)."""
    block = b"y" * 65536
    data, closed, sent, err = flood(
        bodies.port,
        b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
        % FLOOD, lambda: block, FLOOD)
    rs, rest = parse_all(data)
    assert rs and rs[0].status == 413, data
    assert rs[0].closes
    assert closed
    assert err is not None and sent < FLOOD, (sent, err)


@pytest.mark.parametrize("body", [
    b"Content-Length: 1000\r\n\r\n" + b"z" * 1000,
    b"Transfer-Encoding: chunked\r\n\r\n" + b"3e8\r\n" + b"z" * 1000
    + b"\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"1;ext=v\r\nz\r\n" for _ in range(500)) + b"0\r\nT: t\r\n\r\n",
], ids=["content-length", "chunked", "many-chunks"])
def test_small_unread_bodies_keep_the_connection(bodies, body):
    with Client(bodies.port) as c:
        c.send(b"GET /first HTTP/1.1\r\nHost: a\r\n" + body + get("/second"))
        r1, r2 = c.responses(2)
        assert r1.body == b"/first\n" and not r1.closes
        assert r2.body == b"/second\n" and not r2.closes
        c.send(get("/third", close=True))
        assert c.response().body == b"/third\n"


# --------------------------------------------------------------------------
# requests sent ahead by a client that does not read


AHEAD = """
workers: 1
access_log: {prefix}/logs/access.log
servers:
  - listen: 127.0.0.1:{port}
    root: {prefix}/html
    send_timeout: 1s
    locations:
      /:
        static: {}
"""


def test_regress_requests_ahead_wait_for_the_client(eddy):
    """999 pipelined requests for a 16000-byte file (held in memory by
    the file cache) from a client that reads nothing: eddy answers the
    first few, then waits for the client to take them (send_timeout 1s)
    and closes. It used to answer all 999 at once, queueing 16 MB per
    connection in memory."""
    e = eddy(AHEAD)
    e.write_file("html/i.bin", b"i" * 16000)
    with Client(e.port) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(get("/i.bin") * 999)
        time.sleep(2.5)
        answered = len((e.prefix / "logs/access.log").read_text()
                       .splitlines())
        data, closed = c.read_until_close(5)
    assert answered < 400, answered
    assert closed
    # The connection closes in the middle of a response: count heads.
    assert 0 < data.count(b"HTTP/1.1 200 OK\r\n") <= answered
    assert "client timed out taking responses" in e.all_logs()


def test_requests_ahead_all_answered_to_a_reading_client(eddy):
    """The same 999 requests to a client that reads: all answered, in
    order, on one connection."""
    e = eddy(AHEAD)
    e.write_file("html/i.bin", b"i" * 16000)
    with Client(e.port) as c:
        c.send(get("/i.bin") * 998 + get("/i.bin", close=True))
        data, closed = c.read_until_close(20)
    rs, _ = parse_all(data)
    assert closed
    assert len(rs) == 999 and all(r.body == b"i" * 16000 for r in rs)
