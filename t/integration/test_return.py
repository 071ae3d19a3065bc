"""The return handler (config.md) and the basics of every response and
connection (http.md): Date/Server/Content-Length, variables, keep-alive,
HTTP/1.0, HEAD, pipelining."""

import email.utils
import http.client
import re
import time

import pytest

from conftest import read_response, read_until_close, split_response

CONFIG = r"""
workers: 1
shutdown_timeout: 2s
pid_file: logs/eddy.pid
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /nocontent:
        return: 204
      = /ok:
        return: {status: 200, body: "ok\n", content_type: text/plain}
      /vars:
        return: {status: 200, body: "$host|$request_uri|$remote_addr|$worker_id\n"}
      /braces:
        return: {status: 200, body: "${host}-${request_method}-${uri}.\n"}
      /conn:
        return: {status: 200, body: "$connection $connection_requests\n"}
      = /teapot:
        return: {status: 418, body: "short and stout\n", content_type: text/plain}
      /:
        return: {status: 200, body: "root\n"}
"""

DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                     r"\d{4} \d\d:\d\d:\d\d GMT$")


@pytest.fixture
def srv(eddy):
    return eddy(CONFIG)


def one(headers, name):
    values = headers.get(name.lower(), [])
    assert len(values) == 1, "%s: %r" % (name, values)
    return values[0]


def test_return_status_only(srv):
    data, closed = srv.raw_ex(b"GET /nocontent HTTP/1.1\r\nHost: a\r\n"
                              b"Connection: close\r\n\r\n")
    assert closed
    status, headers, rest = split_response(data)
    assert status == 204
    assert "content-length" not in headers
    assert "transfer-encoding" not in headers
    assert rest == b""
    assert DATE_RE.match(one(headers, "date"))
    assert re.match(r"^eddy/\d+\.\d+\.\d+$", one(headers, "server"))


def test_return_status_only_keepalive(srv):
    """A 204 has no body: the next request on the connection works."""
    s = srv.connect()
    try:
        for _ in range(3):
            s.sendall(b"GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n")
            status, headers, rest = split_response(read_response(s))
            assert status == 204
            assert rest == b""
    finally:
        s.close()


def test_return_body(srv):
    r = srv.request("GET", "/ok")
    assert r.status == 200
    assert r.body == b"ok\n"
    assert r.header("Content-Type").split(";")[0].strip() == "text/plain"
    assert r.header("Content-Length") == "3"
    date = r.header("Date")
    assert DATE_RE.match(date), date
    when = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(when - time.time()) < 120
    assert re.match(r"^eddy/\d+\.\d+\.\d+$", r.header("Server")), \
        r.header("Server")
    assert r.header("Transfer-Encoding") is None


def test_return_other_status(srv):
    r = srv.request("GET", "/teapot")
    assert r.status == 418
    assert r.body == b"short and stout\n"
    assert r.header("Content-Length") == str(len(r.body))


def test_return_head(srv):
    data, closed = srv.raw_ex(b"HEAD /ok HTTP/1.1\r\nHost: a\r\n"
                              b"Connection: close\r\n\r\n")
    assert closed
    status, headers, rest = split_response(data)
    assert status == 200
    assert one(headers, "content-length") == "3"
    assert one(headers, "content-type").startswith("text/plain")
    assert rest == b""


def test_return_head_keepalive(srv):
    s = srv.connect()
    try:
        s.sendall(b"HEAD /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, rest = split_response(
            read_response(s, head_request=True))
        assert status == 200 and rest == b""
        s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, rest = split_response(read_response(s))
        assert status == 200 and rest == b"ok\n"
    finally:
        s.close()


def test_return_variables(srv):
    r = srv.request("GET", "/vars/x?a=1&b=%20", headers={"Host": "example.test"})
    assert r.status == 200
    assert r.text == "example.test|/vars/x?a=1&b=%20|127.0.0.1|0\n"
    assert r.header("Content-Length") == str(len(r.body))


def test_return_host_lowercased_without_port(srv):
    r = srv.request("GET", "/vars", headers={"Host": "Example.TEST:8080"})
    assert r.status == 200
    assert r.text.split("|")[0] == "example.test"


def test_return_braced_variables(srv):
    r = srv.request("GET", "/braces/y", headers={"Host": "b.test"})
    assert r.status == 200
    assert r.text == "b.test-GET-/braces/y.\n"


def test_keepalive_several_requests(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.connect()
        sock = conn.sock
        ids = []
        for i in range(1, 6):
            conn.request("GET", "/conn")
            r = conn.getresponse()
            body = r.read().decode()
            assert r.status == 200
            assert not r.will_close, "server closed a keep-alive connection"
            cid, nreq = body.split()
            ids.append(cid)
            assert int(nreq) == i, body
            assert conn.sock is sock, "http.client had to reconnect"
        assert len(set(ids)) == 1, ids
    finally:
        conn.close()


def test_keepalive_mixed_locations(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        for path, status, body in [("/ok", 200, b"ok\n"),
                                   ("/nocontent", 204, b""),
                                   ("/teapot", 418, b"short and stout\n"),
                                   ("/", 200, b"root\n"),
                                   ("/ok", 200, b"ok\n")]:
            conn.request("GET", path)
            r = conn.getresponse()
            assert (r.status, r.read()) == (status, body), path
    finally:
        conn.close()


def test_http10_closes(srv):
    data, closed = srv.raw_ex(b"GET /ok HTTP/1.0\r\n\r\n")
    assert closed, "HTTP/1.0 connection without keep-alive left open"
    status, headers, rest = split_response(data)
    assert status == 200
    assert rest == b"ok\n"
    conn = ",".join(headers.get("connection", [])).lower()
    assert "keep-alive" not in conn


def test_http10_keepalive_on_request(srv):
    s = srv.connect()
    try:
        s.sendall(b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, headers, rest = split_response(read_response(s))
        assert status == 200 and rest == b"ok\n"
        assert "keep-alive" in ",".join(headers.get("connection", [])).lower()
        assert one(headers, "content-length") == "3"
        s.sendall(b"GET /ok HTTP/1.0\r\n\r\n")
        data, closed = read_until_close(s, 5)
        assert closed
        status, headers, rest = split_response(data)
        assert status == 200 and rest == b"ok\n"
    finally:
        s.close()


def test_http11_connection_close(srv):
    data, closed = srv.raw_ex(b"GET /ok HTTP/1.1\r\nHost: a\r\n"
                              b"Connection: close\r\n\r\n")
    assert closed
    status, headers, rest = split_response(data)
    assert status == 200 and rest == b"ok\n"
    assert "close" in ",".join(headers.get("connection", [])).lower()


def test_pipelined_requests_answered_in_order(srv):
    data, closed = srv.raw_ex(
        b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /conn HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert closed
    s1, _, rest = split_response(data)
    assert s1 == 200 and rest.startswith(b"ok\n")
    s2, _, rest = split_response(rest[3:])
    assert s2 == 418 and rest.startswith(b"short and stout\n")
    s3, _, rest = split_response(rest[len(b"short and stout\n"):])
    assert s3 == 200
    assert rest.split()[1] == b"3", rest
