"""The proxy handler (config.md proxy, http.md Proxy): what the upstream
receives byte for byte, bodies both ways, framing, HEAD, 100-continue,
variables and configuration errors."""

import re
import socket
import time

import pytest

from conftest import free_port, position, read_response, read_until_close, \
    run_eddy, split_response, wait_for
from proxy_backend import Backend, CLOSE, chunked, parse_chunked, response


def conf(text, **ports):
    """Replaces @NAME@ by the value of NAME (backend ports, paths)."""
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def start(eddy, text, **ports):
    return eddy(conf(text, **ports))


def test_request_head_byte_for_byte(eddy):
    with Backend() as b:
        e = start(eddy, """
            workers: 1
            upstreams:
              app:
                keepalive: 4
                servers: [127.0.0.1:@B@]
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy:
                      pass: app
                      set_headers: {X-Request-Id: "fixed-$request_method", X-Empty: ""}
                      remove_headers: [cookie]
            """, B=b.port)
        s = e.connect()
        s.sendall(b"GET /some/path%2Fx?a=1&b=2 HTTP/1.1\r\n"
                  b"Host: example.com:8080\r\n"
                  b"User-Agent: t\r\n"
                  b"Connection: keep-alive, X-Hop\r\n"
                  b"X-Hop: secret\r\n"
                  b"Keep-Alive: timeout=5\r\n"
                  b"Proxy-Connection: keep-alive\r\n"
                  b"TE: trailers\r\n"
                  b"Upgrade: h2c\r\n"
                  b"X-Forwarded-For: 10.0.0.1\r\n"
                  b"X-Real-IP: 1.2.3.4\r\n"
                  b"X-Forwarded-Proto: gopher\r\n"
                  b"Cookie: a=b\r\n"
                  b"X-Request-Id: from-client\r\n"
                  b"x-custom: Keep Me\r\n"
                  b"\r\n")
        status, headers, body = split_response(read_response(s))
        s.close()
        assert status == 200
        assert body == b"GET /some/path%2Fx?a=1&b=2\n"
        assert b.requests[0].head == (
            b"GET /some/path%2Fx?a=1&b=2 HTTP/1.1\r\n"
            b"Host: example.com:8080\r\n"
            b"User-Agent: t\r\n"
            b"x-custom: Keep Me\r\n"
            b"X-Request-Id: fixed-GET\r\n"
            b"X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n"
            b"X-Forwarded-Proto: http\r\n"
            b"X-Forwarded-Host: example.com:8080\r\n"
            b"X-Real-IP: 127.0.0.1\r\n")


def test_forwarded_off_pass_host_off(eddy):
    with Backend() as b:
        e = start(eddy, """
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: "http://127.0.0.1:@B@", forwarded: false, pass_host: false}
            """, B=b.port)
        r = e.get("/x", headers={"X-Forwarded-For": "9.9.9.9"})
        assert r.status == 200
        req = b.requests[0]
        assert req.header("Host") == "127.0.0.1:%d" % b.port
        assert req.header_all("X-Forwarded-For") == ["9.9.9.9"]
        assert req.header("X-Real-IP") is None
        # No keepalive in an implicit group: the upstream is told so.
        assert req.header("Connection") == "close"


def test_pass_url_with_path_replaces_prefix(eddy):
    with Backend() as b:
        e = start(eddy, """
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /api/:
                    proxy: {pass: "http://127.0.0.1:@B@/base/"}
                  = /exact:
                    proxy: {pass: "http://127.0.0.1:@B@/other"}
            """, B=b.port)
        assert e.get("/api/a%20b/./c?x=%2F").status == 200
        assert e.get("/api/").status == 200
        assert e.get("/exact?q").status == 200
        assert [r.target for r in b.requests] == [
            "/base/a%20b/c?x=%2F", "/base/", "/other?q"]


def test_pass_target_as_received(eddy):
    """Without a path in pass, %2F and dot segments go out untouched."""
    with Backend() as b:
        e = start(eddy, """
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: "http://localhost:@B@"}
            """, B=b.port)
        data = e.raw(b"GET /a/../b%2Fc?x HTTP/1.1\r\nHost: h\r\n"
                     b"Connection: close\r\n\r\n")
        assert split_response(data)[0] == 200
        data = e.raw(b"GET http://other.example/abs?q=1 HTTP/1.1\r\n"
                     b"Host: h\r\nConnection: close\r\n\r\n")
        assert split_response(data)[0] == 200
        assert [r.target for r in b.requests] == ["/a/../b%2Fc?x",
                                                  "/abs?q=1"]
        # The absolute-form authority is the Host.
        assert b.requests[1].header("Host") == "other.example"


def test_pass_unix_socket(eddy, tmp_path):
    path = str(tmp_path / "app.sock")
    with Backend(path=path) as b:
        e = start(eddy, """
            workers: 1
            upstreams:
              app:
                servers: ["unix:@P@"]
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /u/:
                    proxy: {pass: "unix:@P@"}
                  /:
                    proxy: {pass: app}
            """, P=path)
        r = e.get("/u/1")
        assert r.status == 200 and r.body == b"GET /u/1\n"
        r = e.get("/g/2")
        assert r.status == 200 and r.body == b"GET /g/2\n"
        assert len(b.requests) == 2


def test_http10_client_without_host(eddy):
    with Backend() as b:
        e = start(eddy, """
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: "http://127.0.0.1:@B@"}
            """, B=b.port)
        data, closed = e.raw_ex(b"GET /old HTTP/1.0\r\n\r\n")
        assert closed
        status, headers, body = split_response(data)
        assert status == 200 and body == b"GET /old\n"
        req = b.requests[0]
        assert req.version == "HTTP/1.1"
        assert req.header("Host") == "127.0.0.1:%d" % b.port


BODY_CONF = """
    workers: 1
    client_max_body_size: 100k
    upstreams:
      app:
        keepalive: 2
        servers: [127.0.0.1:@B@]
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: app}
"""


def test_request_body_content_length(eddy):
    with Backend() as b:
        e = start(eddy, BODY_CONF, B=b.port)
        payload = bytes(range(256)) * 40
        r = e.request("POST", "/post", body=payload,
                      headers={"Content-Type": "application/octet-stream"})
        assert r.status == 200
        assert r.body == b"POST /post\n" + payload
        req = b.requests[0]
        assert req.header("Content-Length") == str(len(payload))
        assert req.header("Transfer-Encoding") is None
        assert req.raw_body == payload
        # An empty body keeps its Content-Length: 0.
        r = e.request("PUT", "/empty", body=b"")
        assert r.status == 200
        assert b.requests[1].header("Content-Length") == "0"


def test_request_body_chunked_reencoded(eddy):
    with Backend() as b:
        e = start(eddy, BODY_CONF, B=b.port)
        s = e.connect()
        s.sendall(b"POST /c HTTP/1.1\r\nHost: a\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  b"5;ext=1\r\nhello\r\n6\r\n world\r\n"
                  b"0\r\nX-Trailer: dropped\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert status == 200 and body == b"POST /c\nhello world"
        req = b.requests[0]
        assert req.header("Transfer-Encoding") == "chunked"
        assert req.header("Content-Length") is None
        # Extensions and trailers are dropped; the framing is ours.
        assert req.raw_body == b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        # The connection goes on.
        s.sendall(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert status == 200 and body == b"GET /next\n"
        s.close()


def test_request_body_chunked_slow_pieces(eddy):
    """A chunked body trickling in small pieces arrives whole."""
    with Backend() as b:
        e = start(eddy, BODY_CONF, B=b.port)
        s = e.connect()
        s.sendall(b"POST /slow HTTP/1.1\r\nHost: a\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        data = chunked(b"a" * 1000, b"b" * 3000, b"c")
        for i in range(0, len(data), 700):
            s.sendall(data[i:i + 700])
            time.sleep(0.01)
        status, headers, body = split_response(read_response(s))
        s.close()
        assert status == 200
        assert body == b"POST /slow\n" + b"a" * 1000 + b"b" * 3000 + b"c"
        decoded, rest = parse_chunked(b.requests[0].raw_body)
        assert decoded == b"a" * 1000 + b"b" * 3000 + b"c" and rest == b""


def test_chunked_body_too_large(eddy):
    with Backend() as b:
        e = start(eddy, BODY_CONF, B=b.port)
        s = e.connect()
        s.sendall(b"POST /big HTTP/1.1\r\nHost: a\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  + b"%x\r\n" % 60000 + b"x" * 60000 + b"\r\n"
                  + b"%x\r\n" % 60000 + b"y" * 60000 + b"\r\n")
        data, closed = read_until_close(s, timeout=5)
        s.close()
        assert split_response(data)[0] == 413
        assert closed


def test_expect_100_continue(eddy):
    with Backend() as b:
        e = start(eddy, BODY_CONF, B=b.port)
        s = e.connect()
        s.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        s.settimeout(5)
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(100)
        assert got == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        status, headers, body = split_response(read_response(s))
        assert status == 200 and body == b"POST /e\nhello"
        assert b.requests[0].header("Expect") is None
        # Kept alive: the client got its 100.
        s.sendall(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
        assert split_response(read_response(s))[0] == 200
        s.close()


def test_expect_100_continue_upstream_down(eddy):
    """No 100 Continue when the answer is an error anyway."""
    port = free_port()  # nobody listens there
    e = start(eddy, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                proxy: {pass: "http://127.0.0.1:@B@"}
        """, B=port)
    s = e.connect()
    s.sendall(b"POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    data, closed = read_until_close(s, timeout=5)
    s.close()
    assert data.startswith(b"HTTP/1.1 502 ")
    assert closed


RESP_CONF = """
    workers: 1
    upstreams:
      app:
        keepalive: 4
        servers: [127.0.0.1:@B@]
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: app}
"""


def framing_handler(req, conn):
    if req.target == "/chunked":
        return response(200, chunked("hel", "lo ", "world"),
                        [("Transfer-Encoding", "chunked"),
                         ("Content-Type", "text/x-test")], length=False)
    if req.target == "/close":
        return response(200, b"until close", length=False,
                        version="HTTP/1.0"), CLOSE
    if req.target == "/head":
        return (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                b"X-Head: yes\r\n\r\n")
    if req.target == "/204":
        return b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"
    if req.target == "/304":
        return b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"
    if req.target == "/hop":
        return (b"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\n"
                b"X-Secret: no\r\nKeep-Alive: timeout=1\r\n"
                b"Server: backend/1\r\nDate: yesterday\r\n"
                b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"
                b"Content-Length: 2\r\n\r\nok")
    if req.target == "/interim":
        return (b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine")
    return response(200, b"plain")


def test_response_framings(eddy):
    with Backend(framing_handler) as b:
        e = start(eddy, RESP_CONF, B=b.port)
        s = e.connect()
        s.sendall(b"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert status == 200
        assert headers["transfer-encoding"] == ["chunked"]
        assert headers["content-type"] == ["text/x-test"]
        assert parse_chunked(body) == (b"hello world", b"")

        s.sendall(b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert status == 200 and "content-length" not in headers
        assert parse_chunked(body) == (b"until close", b"")

        s.sendall(b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert headers["content-length"] == ["5"] and body == b"plain"
        s.close()

        # HTTP/1.0 clients get the body delimited by the close.
        data, closed = e.raw_ex(b"GET /chunked HTTP/1.0\r\n\r\n")
        assert closed
        status, headers, body = split_response(data)
        assert "transfer-encoding" not in headers and body == b"hello world"


def test_head_and_bodiless_statuses(eddy):
    with Backend(framing_handler) as b:
        e = start(eddy, RESP_CONF, B=b.port)
        s = e.connect()
        s.sendall(b"HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(
            read_response(s, head_request=True))
        assert status == 200 and headers["content-length"] == ["100"]
        assert headers["x-head"] == ["yes"]
        for path, code in ((b"/204", 204), (b"/304", 304)):
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            status, headers, body = split_response(read_response(s))
            assert status == code and body == b""
            assert "content-length" not in headers
        s.sendall(b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert status == 200 and body == b"plain"
        s.close()
        assert b.requests[0].method == "HEAD"
        # All of it on one kept-alive upstream connection.
        assert b.connections == 1


def test_response_hop_headers_and_interim(eddy):
    with Backend(framing_handler) as b:
        e = start(eddy, RESP_CONF, B=b.port)
        data = e.raw(b"GET /hop HTTP/1.1\r\nHost: a\r\n"
                     b"Connection: close\r\n\r\n")
        status, headers, body = split_response(data)
        assert status == 200 and body == b"ok"
        assert "x-secret" not in headers and "keep-alive" not in headers
        assert headers["set-cookie"] == ["a=1", "b=2"]
        assert headers["server"][0].startswith("eddy")
        assert headers["date"] != ["yesterday"]
        assert headers["connection"] == ["close"]
        r = e.get("/interim")
        assert r.status == 200 and r.body == b"fine"


def test_upstream_variables_in_access_log(eddy):
    with Backend() as b:
        e = start(eddy, """
            workers: 1
            access_log: {path: logs/access.log, format: "$status $upstream_addr $upstream_status $upstream_response_time"}
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: "http://127.0.0.1:@B@"}
                  /none:
                    return: 204
            """, B=b.port)
        assert e.get("/a").status == 200
        assert e.get("/none").status == 204
        lines = []

        def logged():
            lines[:] = e.log_text("logs/access.log").splitlines()
            return len(lines) >= 2
        assert wait_for(logged, 5)
        assert re.match(r"^200 127\.0\.0\.1:%d 200 \d+\.\d{3}$" % b.port,
                        lines[0]), lines[0]
        # No upstream: the variables have no value.
        assert lines[1].split() == ["204"]


@pytest.mark.parametrize("snippet,needle,message", [
    ("proxy: {pass: nosuch}", "nosuch", 'unknown upstream "nosuch"'),
    ("proxy: {pass: \"https://a.invalid\"}", "\"https://",
     'invalid proxy address "a.invalid:443"'),
    ("proxy: {pass: app, tls_verify: true}", "true}",
     "tls_verify applies to https upstreams only"),
    ("proxy: {pass: app, tls_ca: ca.pem}", "ca.pem",
     "tls_ca applies to https upstreams only"),
    ("proxy: {pass: app, next_upstream: [error, bogus]}", "[error",
     "expected error, timeout, 502, 503, 504 or off"),
    ("proxy: {pass: app, buffer_size: 10}", "10}", "out of range"),
    ("proxy: {pass: app, pas_host: true}", "pas_host",
     'did you mean "pass_host"'),
    ("proxy: {connect_timeout: 1s}", "{connect", 'proxy needs "pass"'),
    ("proxy: {pass: \"http://127.0.0.1:1/x\"}\n              return: 204",
     "return", "conflicts"),
])
def test_config_errors(eddy, prefix, snippet, needle, message):
    text = conf("""
upstreams:
  app:
    servers: [127.0.0.1:9]
servers:
  - listen: 127.0.0.1:1
    locations:
      /:
        %s
""" % snippet.replace("\n              ", "\n        "))
    (prefix / "conf" / "eddy.yaml").write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", prefix / "conf/eddy.yaml",
                             "-t"])
    assert rc != 0
    assert message in err, err
    if needle != "return":
        line, col = position(text, needle)
        assert "eddy.yaml:%d:%d:" % (line, col) in err, err


@pytest.mark.parametrize("group,needle,message", [
    ("app: {servers: []}", "[]", "empty \"servers\" list"),
    ("app: {balance: rr, servers: [127.0.0.1:9]}", "rr",
     "expected one of: round_robin, least_conn, ip_hash, hash, random_two"),
    ("app: {balance: hash, servers: [127.0.0.1:9]}", "hash,",
     'needs a "hash_key"'),
    ("app: {hash_key: $uri, servers: [127.0.0.1:9]}", "$uri",
     "used only with balance: hash"),
    ("app: {keepalive: 1}", "{keepalive", 'has no "servers"'),
    ("app: {servers: [\"127.0.0.1:99999\"]}", "\"127", "invalid port"),
    ("app: {servers: [{address: 127.0.0.1:9, wieght: 2}]}", "wieght",
     'did you mean "weight"'),
    ("app: {servers: [{address: 127.0.0.1:9, weight: 0}]}", "0}",
     "out of range"),
    ("app: {servers: [\"https://x:1\"]}", "\"https",
     "for TLS to them, use pass: https://app"),
    ("app: {servers: [127.0.0.1:9], health_check: {expect_status: 99}}",
     "99", "expected a status or a range"),
    ("app: {servers: [127.0.0.1:9], health_check: {intervall: 1s}}",
     "intervall", 'did you mean "interval"'),
    ("app: {servers: [no-such-host.invalid:80]}", "no-such",
     "invalid upstream server"),
])
def test_upstream_config_errors(prefix, group, needle, message):
    text = """
upstreams:
  %s
servers:
  - listen: 127.0.0.1:1
    locations:
      /:
        return: 204
""" % group
    (prefix / "conf" / "eddy.yaml").write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", prefix / "conf/eddy.yaml",
                             "-t"])
    assert rc != 0
    assert message in err, err
    line, col = position(text, needle)
    assert "eddy.yaml:%d:%d:" % (line, col) in err, err


def test_config_valid_upstream_dump(prefix):
    text = """
upstreams:
  app:
    balance: hash
    hash_key: $request_uri
    keepalive: 8
    keepalive_timeout: 30s
    servers:
      - localhost:9001
      - {address: 127.0.0.1:9002, weight: 3}
      - {address: "unix:/run/app.sock", max_fails: 3, fail_timeout: 10s}
      - {address: 127.0.0.1:9003, backup: true}
    health_check: {path: /healthz, interval: 5s, timeout: 2s, fails: 3, passes: 2, expect_status: 200-399}
servers:
  - listen: 127.0.0.1:1
    locations:
      /:
        proxy:
          pass: app
          connect_timeout: 5s
          send_timeout: 60s
          read_timeout: 60s
          next_upstream: [error, timeout, 502, 503, 504]
          next_upstream_tries: 3
          pass_host: true
          set_headers: {X-Request-Id: $request_id}
          remove_headers: [Cookie]
          forwarded: true
          buffer_size: 64k
          websocket: true
"""
    (prefix / "conf" / "eddy.yaml").write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", prefix / "conf/eddy.yaml",
                             "-t"])
    assert rc == 0, err


def split_responses(data):
    """Consecutive Content-Length responses: [(status, headers, body)]."""
    out = []
    while data:
        status, headers, rest = split_response(data)
        n = int(headers["content-length"][0])
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def test_pipelined_requests_in_order(eddy):
    with Backend() as b:
        e = start(eddy, BODY_CONF, B=b.port)
        s = e.connect()
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                  b"POST /3 HTTP/1.1\r\nHost: a\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
                  b"GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data, closed = read_until_close(s)
        s.close()
        assert closed
        bodies = [r[2] for r in split_responses(data)]
        assert bodies == [b"GET /1\n", b"POST /2\nabc", b"POST /3\nxy",
                          b"GET /4\n"]


def test_error_page_for_upstream_failure(eddy):
    port = free_port()
    e = start(eddy, """
        workers: 1
        error_pages: {502: /oops}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                proxy: {pass: "http://127.0.0.1:@B@"}
              = /oops:
                return: {status: 200, body: "upstream down\\n"}
        """, B=port)
    s = e.connect()
    s.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
              b"GET /y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    data, closed = read_until_close(s)
    s.close()
    assert [(st, body) for st, h, body in split_responses(data)] == [
        (502, b"upstream down\n")] * 2


def test_graceful_reload_finishes_proxied_request(eddy):
    def slow(req, conn):
        if req.target == "/slow":
            time.sleep(1.0)
        return response(200, b"done " + req.target.encode())
    with Backend(slow) as b:
        e = start(eddy, BODY_CONF, B=b.port)
        old = e.wait_workers(1)
        s = e.connect()
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        assert b.wait_requests(1)
        assert e.ctl("-s", "reload")[0] == 0
        status, headers, body = split_response(read_response(s))
        assert status == 200 and body == b"done /slow"
        # Plaintext: not forced to close; the connection then moves to
        # the new generation (fleet.md), events.handover being on.
        assert "connection" not in headers
        e.wait_workers(1, exclude=old)
        s.sendall(b"GET /new HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert status == 200 and body == b"done /new"
        s.close()
        assert e.get("/new").body == b"done /new"


def test_client_body_timeout_408(eddy):
    with Backend() as b:
        e = start(eddy, BODY_CONF.replace("client_max_body_size: 100k",
                                          "client_body_timeout: 300ms"),
                  B=b.port)
        s = e.connect()
        s.sendall(b"POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
                  b"\r\n012")
        t = time.monotonic()
        data, closed = read_until_close(s, timeout=5)
        s.close()
        assert split_response(data)[0] == 408
        assert closed and time.monotonic() - t < 3
        # The upstream never got a complete request to answer.
        assert len(b.requests) == 0


def test_upstreams_include(eddy):
    with Backend() as b:
        e = eddy(conf("""
            workers: 1
            upstreams:
              include: ups/*.yaml
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: included}
            """), start=False)
        e.write_config("included:\n  servers: [127.0.0.1:%d]\n" % b.port,
                       "conf/ups/one.yaml")
        e.start()
        assert e.get("/inc").body == b"GET /inc\n"


def test_ipv6_upstream(eddy):
    try:
        b = Backend(host="::1", family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    with b:
        e = start(eddy, """
            workers: 1
            access_log: {path: logs/access.log, format: "$upstream_addr"}
            upstreams:
              v6:
                servers: ["[::1]:@B@"]
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: v6, pass_host: false}
            """, B=b.port)
        assert e.get("/six").body == b"GET /six\n"
        assert b.requests[0].header("Host") == "[::1]:%d" % b.port
        assert wait_for(lambda: e.log_text("logs/access.log").strip()
                        == "[::1]:%d" % b.port, 5)
