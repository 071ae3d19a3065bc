"""fastcgi against a scripted FastCGI server (fastcgi-cgi.md): the records
eddy writes (BEGIN_REQUEST, PARAMS in padded records of at most 65535
bytes, the empty PARAMS and STDIN, FCGI_KEEP_CONN), and each bad answer:
status and the exact log line."""

import gzip
import re
import socket
import threading
import time

import pytest

from conftest import read_until_close, wait_for
from fcgiutil import (END_REQUEST, PARAMS, STDIN, BEGIN_REQUEST,
                      FcgiServer, end, record, response, stderr, stdout)

HEAD = b"Content-Type: text/plain\r\n\r\n"


def config(srv, keepalive=0, block="", servers=None, extra=""):
    return """
        workers: 1
        error_log: {prefix}/logs/error.log
        upstreams:
          app:
            servers: [%s]
            keepalive: %d
        servers:
          - listen: 127.0.0.1:{port}
            max_header_size: 256k
            client_max_body_size: 64m
            locations:
              /:
                fastcgi:
                  pass: app
                  check_script: false
                  read_timeout: 2s
                  %s
            %s
    """ % (servers or '"%s"' % srv.pass_, keepalive, block, extra)


def replying(data, keep=False):
    def handler(req, conn):
        conn.sendall(data)
        return keep
    return handler


def line_re(srv, what):
    return (r"\[error\] \d+#\d+: upstream %s %s \(upstream \"app\"\), "
            r"client: 127\.0\.0\.1, server: , request: \"GET /x HTTP/1\.1\", "
            r"upstream: \"fastcgi://%s/x\", host: \"127\.0\.0\.1:\d+\""
            % (re.escape(srv.pass_), what, re.escape(srv.pass_)))


def test_records_sent(eddy):
    with FcgiServer(replying(response(HEAD, b"hi"))) as srv:
        e = eddy(config(srv))
        big = "v" * 100000
        r = e.request("POST", "/x?q=1", body=b"abc",
                      headers={"X-Big": big})
        assert r.status == 200 and r.body == b"hi"
        req = srv.requests[0]
        assert req.role == 1 and req.flags == 0
        # Request id 1 everywhere; every record padded to 8; PARAMS
        # content at most 65535 bytes; the streams end with an empty
        # record.
        assert all(rec[1] == 1 and rec[2] == 1 for rec in req.records)
        assert all((rec[3] + rec[4]) % 8 == 0 for rec in req.records)
        params = [rec for rec in req.records if rec[0] == PARAMS]
        assert len(params) >= 3 and params[-1][3] == 0
        assert max(rec[3] for rec in params) == 65535
        assert [rec[0] for rec in req.records][:1] == [BEGIN_REQUEST]
        assert req.records[-1][0] == STDIN and req.records[-1][3] == 0
        assert req.stdin == b"abc"
        assert req.params["HTTP_X_BIG"] == big
        assert req.params["QUERY_STRING"] == "q=1"
        assert req.params["CONTENT_LENGTH"] == "3"
        # No body: only the empty STDIN.
        assert e.get("/x").status == 200
        stdin = [rec for rec in srv.requests[1].records if rec[0] == STDIN]
        assert stdin == [(STDIN, 1, 1, 0, 0)]


def test_keep_conn_pooled(eddy):
    with FcgiServer(replying(response(HEAD, b"k"), keep=True)) as srv:
        e = eddy(config(srv, keepalive=2))
        for _ in range(20):
            r = e.get("/x")
            assert r.status == 200 and r.body == b"k"
        assert srv.connections == 1
        assert all(req.flags == 1 for req in srv.requests)


def test_pooled_connection_closed_by_application(eddy):
    """The application drops a kept connection: the next request goes on
    a new one, without an error."""
    def handler(req, conn):
        conn.sendall(response(HEAD, b"s"))
        return True
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, keepalive=2))
        assert e.get("/x").status == 200
        # Close the server side quietly (shutdown of reading only: eddy
        # sees the close when it uses the connection).
        for c in srv.conns:
            c.shutdown(socket.SHUT_RDWR)
        r = e.get("/x")
        assert r.status == 200 and r.body == b"s"
        assert srv.connections == 2
        assert "closed the connection" not in e.error_log


BAD = [
    ("version 2", stdout(HEAD, version=2),
     "sent an invalid FastCGI record \\(version 2\\)"),
    ("request id", stdout(HEAD, rid=2),
     "sent an invalid FastCGI record \\(request id 2\\)"),
    ("other type", record(10, b"12345678"),
     "sent an invalid FastCGI record \\(type 10\\)"),
    ("end body size", record(END_REQUEST, b"1234"),
     "sent an invalid FastCGI record \\(END_REQUEST of 4 bytes\\)"),
    ("overloaded", end(0, 2),
     "sent an invalid FastCGI record \\(OVERLOADED\\)"),
    ("cant mpx", end(0, 1),
     "sent an invalid FastCGI record \\(CANT_MPX_CONN\\)"),
    ("unknown role", end(0, 3),
     "sent an invalid FastCGI record \\(UNKNOWN_ROLE\\)"),
    ("after end, head in part", stdout(b"X: 1\r\n") + end() + stdout(b"x"),
     "sent an invalid FastCGI record \\(record after END_REQUEST\\)"),
    ("truncated header", stdout(HEAD)[:5],
     "closed the connection without a response"),
    ("close mid-record", stdout(HEAD + b"body")[:20],
     "closed the connection before END_REQUEST"),
    ("close before end", stdout(b"X: 1\r\n"),
     "closed the connection before END_REQUEST"),
    ("nothing", b"", "closed the connection without a response"),
    ("end before head", stdout(b"X: 1\r\n") + end(),
     "sent an invalid response head"),
    ("bad head", stdout(b"X : 1\r\n\r\n") + end(),
     "sent an invalid response head"),
]


@pytest.mark.parametrize("name,data,line", BAD, ids=[b[0] for b in BAD])
def test_bad_answer_502(eddy, name, data, line):
    with FcgiServer(replying(data)) as srv:
        e = eddy(config(srv, block="next_upstream: off"))
        r = e.get("/x")
        assert r.status == 502, r
        assert wait_for(lambda: re.search(line_re(srv, line), e.error_log),
                        3), e.error_log


@pytest.mark.parametrize("data,line", [
    (response(HEAD, b"complete") + stdout(b"more"),
     "sent an invalid FastCGI record \\(record after END_REQUEST\\)"),
    (stdout(HEAD + b"partial") + record(9, b""),
     "sent an invalid FastCGI record \\(type 9\\)"),
    (stdout(HEAD + b"partial"), "closed the connection before END_REQUEST"),
], ids=["after end", "bad type", "close"])
def test_bad_after_head_closes_client(eddy, data, line):
    with FcgiServer(replying(data)) as srv:
        e = eddy(config(srv))
        s = e.connect()
        s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        got, closed = read_until_close(s)
        s.close()
        assert closed
        assert got.startswith(b"HTTP/1.1 200"), got
        # Chunked, never terminated.
        assert not got.endswith(b"0\r\n\r\n")
        assert re.search(line_re(srv, line).replace("127\\.0\\.0\\.1:\\d+",
                                                    "h"), e.error_log)


def test_records_split_at_every_byte(eddy):
    answer = (stderr(b"warn\n", pad=255) + stdout(b"Status: 201\r\nX-A:")
              + stdout(b" b\r\n\r\nbo", pad=0) + stdout(b"dy", pad=3)
              + stdout(b"") + end())

    def handler(req, conn):
        for i in range(len(answer)):
            conn.sendall(answer[i:i + 1])
            time.sleep(0.002)
        return False
    with FcgiServer(handler) as srv:
        e = eddy(config(srv))
        r = e.get("/x")
        assert r.status == 201 and r.header("X-A") == "b"
        assert r.body == b"body"
        assert "fastcgi stderr from %s: \"warn\"" % srv.pass_ in e.error_log


def test_head_fields_across_pieces(eddy):
    # The first piece holds whole fields but not the empty line: what was
    # found there is kept when the head buffer grows for the next ones.
    first = stdout(b"Status: 202\r\nX-A: 1\r\nX-B: 22\r\n")
    rest = (stdout(b"X-C: 333\r\n" + b"X-D: " + b"d" * 3000 + b"\r\n\r\nbo")
            + stdout(b"dy") + stdout(b"") + end())

    def handler(req, conn):
        conn.sendall(first)
        time.sleep(0.05)
        conn.sendall(rest)
        return False
    with FcgiServer(handler) as srv:
        e = eddy(config(srv))
        r = e.get("/x")
        assert r.status == 202 and r.body == b"body"
        assert (r.header("X-A"), r.header("X-B"), r.header("X-C")) == \
            ("1", "22", "333")
        assert r.header("X-D") == "d" * 3000


def test_huge_padding_and_app_status(eddy):
    answer = (stdout(HEAD, pad=255) + stdout(b"x" * 65535, pad=255)
              + stdout(b"", pad=255) + end(7, pad=255))
    with FcgiServer(replying(answer)) as srv:
        e = eddy(config(srv))
        r = e.get("/x")
        assert r.status == 200 and r.body == b"x" * 65535
        assert "[info]" in e.error_log
        assert "ended the request with appStatus 7" in e.error_log


def test_stderr_flood_capped(eddy):
    line = b"e" * 1000 + b"\n"
    answer = stderr(line * 50) + stderr(line * 50) + response(HEAD, b"ok")
    with FcgiServer(replying(answer)) as srv:
        e = eddy(config(srv))
        assert e.get("/x").body == b"ok"
        assert wait_for(lambda: "not logged" in e.error_log, 3)
        log = e.error_log
        assert log.count("\"" + "e" * 1000 + "\"") == 65
        assert re.search(r"fastcgi stderr from %s: %d more bytes of stderr "
                         r"not logged \(upstream \"app\"\), client: "
                         % (re.escape(srv.pass_), 100 * 1001 - 65536), log)


def test_stderr_escaped_and_split(eddy):
    answer = stderr(b"a\x01b\r\n" + b"L" * 3000 + b"\n") + response(HEAD)
    with FcgiServer(replying(answer)) as srv:
        e = eddy(config(srv))
        assert e.get("/x").status == 200
        log = e.error_log
        assert "\"a\\x01b\"" in log
        assert "\"" + "L" * 2048 + "\"" in log
        assert "\"" + "L" * 952 + "\"" in log


def test_bad_record_before_stdout_tries_next(eddy):
    with FcgiServer(replying(stdout(HEAD, version=2))) as bad, \
            FcgiServer(replying(response(HEAD, b"good"))) as good:
        e = eddy(config(bad, servers='"%s", "%s"' % (bad.pass_, good.pass_),
                        block="next_upstream: [error]")
                 .replace("keepalive: 0", "keepalive: 0\n            "
                          "balance: round_robin"))
        for _ in range(4):
            r = e.get("/x")
            assert r.status == 200 and r.body == b"good"


def test_status_503_tries_next(eddy):
    with FcgiServer(replying(response(b"Status: 503\r\n\r\n"))) as bad, \
            FcgiServer(replying(response(HEAD, b"good"))) as good:
        e = eddy(config(bad, servers='"%s", "%s"' % (bad.pass_, good.pass_),
                        block="next_upstream: [error, 503]"))
        for _ in range(4):
            r = e.get("/x")
            assert r.status == 200 and r.body == b"good"


def test_send_timeout_504(eddy):
    """The application does not read STDIN: the body stalls, 504."""
    def handler(req, conn):
        time.sleep(3)
        return False
    with FcgiServer(handler, want_stdin=False) as srv:
        e = eddy(config(srv, block="send_timeout: 300ms\n                  "
                        "buffer_size: 4k"))
        s = e.connect()
        s.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n"
                  b"\r\n" % (8 << 20))

        def send():
            try:
                s.sendall(b"b" * (2 << 20))
            except OSError:
                pass
        t = threading.Thread(target=send, daemon=True)
        t.start()
        got, _ = read_until_close(s, timeout=5)
        s.close()
        assert got.startswith(b"HTTP/1.1 504"), got[:200]
        assert "upstream timed out while sending to %s (upstream \"app\")" \
            % srv.pass_ in e.error_log


def test_unknown_length_body_length_learned(eddy):
    with FcgiServer(replying(response(HEAD, b"ok"))) as srv:
        e = eddy(config(srv))
        s = e.connect()
        s.sendall(b"PUT /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
                  b"2\r\nde\r\n0\r\n\r\n")
        got, _ = read_until_close(s)
        s.close()
        assert got.startswith(b"HTTP/1.1 200")
        req = srv.requests[0]
        assert req.params["CONTENT_LENGTH"] == "5"
        assert req.stdin == b"abcde"


def test_client_gone_closes_application_connection(eddy):
    closed = []

    def handler(req, conn):
        conn.sendall(stdout(HEAD + b"x"))
        conn.settimeout(5)
        try:
            closed.append(conn.recv(1) == b"")
        except OSError:
            closed.append(True)
        return False
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, keepalive=4))
        s = e.connect()
        s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        s.recv(100)
        s.close()
        assert wait_for(lambda: closed, 5)
        assert closed == [True]


def test_methods_reach_application_but_connect(eddy):
    with FcgiServer(replying(response(HEAD, b"m"))) as srv:
        e = eddy(config(srv))
        for m in ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
                  "TRACE"):
            r = e.request(m, "/x", body=b"" if m in ("POST", "PUT", "PATCH")
                          else None)
            assert r.status == 200, m
        assert [q.params["REQUEST_METHOD"] for q in srv.requests] == [
            "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"]
        got = e.raw(b"CONNECT example.com:443 HTTP/1.1\r\nHost: h\r\n"
                    b"Connection: close\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 405"), got
        assert len(srv.requests) == 7


def test_stale_kept_connection_retried_once_fresh(eddy):
    """A kept connection the application closes without answering the
    next request on it: an idempotent request goes once more on a fresh
    connection; a POST, whose bytes went out, gets a 502."""
    seen = {}

    def handler(req, conn):
        n = seen.get(id(conn), 0) + 1
        seen[id(conn)] = n
        if n > 1:
            return False          # close without a record
        conn.sendall(response(HEAD, b"fresh"))
        return True
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, keepalive=2))
        assert e.get("/x").body == b"fresh"
        r = e.get("/x")
        assert r.status == 200 and r.body == b"fresh"
        assert srv.connections == 2
        assert "closed the connection" not in e.error_log
        r = e.request("POST", "/x", body=b"once")
        assert r.status == 502
        assert re.search(r"upstream %s closed the connection without a "
                         r"response \(upstream \"app\"\)"
                         % re.escape(srv.pass_), e.error_log)
        assert [q.stdin for q in srv.requests].count(b"once") == 1


def test_filters_apply_error_pages_only_to_own_errors(eddy):
    page = b"<p>" + b"compressible " * 200 + b"</p>"

    def handler(req, conn):
        if req.params["SCRIPT_NAME"] == "/missing":
            conn.sendall(response(b"Status: 404\r\nContent-Type: text/html"
                                  b"\r\n\r\n", b"app's own 404"))
        elif req.params["SCRIPT_NAME"] == "/broken":
            conn.sendall(stdout(b"X : bad\r\n\r\n") + end())
        else:
            conn.sendall(response(b"Content-Type: text/html\r\n\r\n", page))
        return False
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, extra="""
              = /404.html:
                return: {status: 200, body: "eddy's 404 page"}
              = /502.html:
                return: {status: 200, body: "eddy's 502 page"}
            error_pages: {404: /404.html, 502: /502.html}
            gzip: true
            headers: {set: {X-Via: eddy}}
        """))
        r = e.get("/page", headers={"Accept-Encoding": "gzip"})
        assert r.status == 200
        assert r.header("Content-Encoding") == "gzip"
        assert r.header("X-Via") == "eddy"
        assert gzip.decompress(r.body) == page
        r = e.get("/missing")
        assert r.status == 404 and r.body == b"app's own 404"
        r = e.get("/broken")
        assert r.status == 502 and r.body == b"eddy's 502 page"
