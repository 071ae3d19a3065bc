"""Upgrades through the proxy (config.md proxy `websocket`): only
WebSocket is relayed. Any other Upgrade (h2c with HTTP2-Settings above
all) goes upstream as an ordinary request without it, and a 101 that does
not switch to the WebSocket asked for is a 502: no tunnel can carry
requests past the access rules of eddy."""

import os
import socket
import threading

import pytest

from conftest import read_until_close, split_response
from proxy_backend import Backend, Reader, TAKEN, echo_handler, response, \
    ws_accept_key, ws_echo_handler, ws_frame, ws_read_frame

CONF = """
    workers: 1
    error_log: logs/error.log
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: "http://127.0.0.1:@B@", read_timeout: 5s}
          /admin:
            access: [{deny: all}]
            proxy: {pass: "http://127.0.0.1:@B@"}
          /nows:
            proxy: {pass: "http://127.0.0.1:@B@", websocket: false}
"""

SMUGGLED = (b"GET /admin/secret HTTP/1.1\r\nHost: a\r\n"
            b"Connection: close\r\n\r\n")


def conf(b):
    return CONF.replace("@B@", str(b.port))


def split_responses(data):
    """Consecutive Content-Length responses: [(status, headers, body)]."""
    out = []
    while data:
        status, headers, rest = split_response(data)
        n = int(headers.get("content-length", ["0"])[0])
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


class H2cBackend(Backend):
    """A backend that switches to any protocol it is offered, then serves
    whatever arrives in the tunnel with "secret" (as an h2c server would
    serve the requests in it). Without an Upgrade it echoes."""

    def __init__(self):
        self.tunnelled = []
        super().__init__(self.handle)

    def handle(self, req, conn):
        if req.header("Upgrade") is None:
            return echo_handler(req, conn)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                     b"Upgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
        conn.settimeout(2)
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if data:
            self.tunnelled.append(data)
            conn.sendall(response(200, b"secret\n"))
        conn.close()
        return TAKEN


def switching(*upgrade_lines):
    """A backend answering every request with a 101 carrying these
    Upgrade lines; it echoes anything relayed to it afterwards."""
    relayed = []

    def handle(req, conn):
        head = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
        for line in upgrade_lines:
            head += "Upgrade: %s\r\n" % line
        key = req.header("Sec-WebSocket-Key")
        if key:
            head += "Sec-WebSocket-Accept: %s\r\n" % ws_accept_key(key)
        conn.sendall(head.encode() + b"\r\n")
        conn.settimeout(2)
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if data:
            relayed.append(data)
            conn.sendall(data)
        conn.close()
        return TAKEN
    return handle, relayed


def exchange(e, data):
    s = e.connect()
    try:
        s.sendall(data)
        out, _ = read_until_close(s, timeout=5)
    finally:
        s.close()
    return out


@pytest.mark.parametrize("version,method,fields", [
    ("1.1", "GET", "Upgrade: h2c\r\n"
                   "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                   "Connection: Upgrade, HTTP2-Settings\r\n"),
    ("1.1", "GET", "upgrade: H2C\r\nhttp2-settings: AAMAAABkAAQAAP__\r\n"
                   "connection: HTTP2-Settings,upgrade\r\n"),
    ("1.1", "GET", "Upgrade: HTTP/2.0\r\nConnection: upgrade\r\n"),
    ("1.1", "GET", "Upgrade: TLS/1.0, HTTP/1.1\r\nConnection: Upgrade\r\n"),
    ("1.1", "GET", "Upgrade: h2c\r\nUpgrade: IRC/6.9\r\n"
                   "Connection: Upgrade\r\nConnection: HTTP2-Settings\r\n"
                   "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
    ("1.1", "GET", "Upgrade: websocketx\r\nConnection: Upgrade\r\n"),
    ("1.1", "GET", "Upgrade: websocket/13\r\nConnection: Upgrade\r\n"),
    ("1.1", "GET", "Upgrade: \"websocket\"\r\nConnection: Upgrade\r\n"),
    # WebSocket, but not as RFC 6455 4.1 asks (GET, HTTP/1.1, no body).
    ("1.0", "GET", "Upgrade: websocket\r\n"
                   "Connection: keep-alive, Upgrade\r\n"),
    ("1.1", "POST", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Content-Length: 2\r\n"),
])
def test_regress_h2c_smuggling_not_tunnelled(eddy, version, method, fields):
    """The upgrade is never offered upstream: the backend answers the
    request as an ordinary one, and the request that follows it on the
    connection goes through eddy's access rules (403), never through a
    tunnel to the backend."""
    with H2cBackend() as b:
        e = eddy(conf(b))
        body = b"hi" if method == "POST" else b""
        first = ("%s / HTTP/%s\r\nHost: a\r\n%s\r\n"
                 % (method, version, fields)).encode() + body
        out = exchange(e, first + SMUGGLED)
        assert b"HTTP/1.1 101" not in out
        assert b"secret" not in out
        got = split_responses(out)
        assert [st for st, h, bd in got] == [200, 403]
        assert got[0][2] == ("%s /\n" % method).encode() + body
        assert b.tunnelled == []
        assert [r.target for r in b.requests] == ["/"]
        req = b.requests[0]
        assert req.header("Upgrade") is None
        assert req.header("HTTP2-Settings") is None
        assert "upgrade" not in (req.header("Connection") or "").lower()


def test_regress_h2c_smuggling_slow_client(eddy):
    """The same, the smuggled request sent once the first answer is in."""
    with H2cBackend() as b:
        e = eddy(conf(b))
        s = e.connect()
        s.settimeout(5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n"
                  b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                  b"Connection: Upgrade, HTTP2-Settings\r\n\r\n")
        rd = Reader(s)
        head = rd.until(b"\r\n\r\n")
        status, headers, _ = split_response(head)
        assert status == 200
        assert "upgrade" not in headers
        rd.exactly(int(headers["content-length"][0]))
        s.sendall(SMUGGLED)
        out = rd.buf + read_until_close(s, timeout=5)[0]
        s.close()
        assert [st for st, h, bd in split_responses(out)] == [403]
        assert b.tunnelled == []
        assert len(b.requests) == 1


@pytest.mark.parametrize("upgrade_lines", [
    ["h2c"],
    ["websocket, h2c"],
    ["h2c, websocket"],
    ["h2c", "websocket"],
    ["websocket", "websocket"],
    ["websocket/13"],
    ["TLS/1.0"],
    [],
])
def test_regress_101_to_another_protocol_is_502(eddy, upgrade_lines):
    """Asked for WebSocket, the backend switches to something else (or
    does not say to what): 502, and nothing the client sends next reaches
    the backend."""
    handle, relayed = switching(*upgrade_lines)
    with Backend(handle) as b:
        e = eddy(conf(b))
        out = exchange(e, b"GET /ws HTTP/1.1\r\nHost: a\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n" + SMUGGLED)
        assert b"HTTP/1.1 101" not in out
        got = split_responses(out)
        assert [st for st, h, bd in got] == [502, 403]
        assert relayed == []
        assert b.requests[0].header("Upgrade") == "websocket"
        assert "switched protocols to something other than websocket" \
            in e.error_log


@pytest.mark.parametrize("path,fields", [
    ("/", ""),
    ("/", "Upgrade: h2c\r\nConnection: Upgrade\r\n"),
    ("/nows", "Upgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
])
def test_regress_101_unasked_is_502(eddy, path, fields):
    """A 101 to a request that offered no upgrade upstream is a 502."""
    handle, relayed = switching("websocket")
    with Backend(handle) as b:
        e = eddy(conf(b))
        out = exchange(e, ("GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n"
                           % (path, fields)).encode() + SMUGGLED)
        assert b"HTTP/1.1 101" not in out
        got = split_responses(out)
        assert [st for st, h, bd in got] == [502, 403]
        assert relayed == []
        assert b.requests[0].header("Upgrade") is None
        assert "switched protocols unasked" in e.error_log


@pytest.mark.parametrize("fields", [
    "Upgrade: h2c, WebSocket\r\nConnection: keep-alive, Upgrade\r\n",
    "Upgrade: WEBSOCKET\r\nConnection: UPGRADE\r\n",
    "Upgrade: ,websocket ,\r\nConnection: upgrade\r\n",
])
def test_websocket_token_in_a_list(eddy, fields):
    """WebSocket among other tokens, in any case: the backend is offered
    websocket alone, and the tunnel works."""
    with Backend(ws_echo_handler) as b:
        e = eddy(conf(b))
        s = e.connect()
        s.settimeout(5)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        s.sendall(("GET /ws HTTP/1.1\r\nHost: a\r\n%s"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "\r\n" % (fields, key)).encode())
        rd = Reader(s)
        status, headers, _ = split_response(rd.until(b"\r\n\r\n"))
        assert status == 101
        assert headers["upgrade"] == ["websocket"]
        assert headers["sec-websocket-accept"] == [ws_accept_key(key)]
        req = b.requests[0]
        assert req.header_all("Upgrade") == ["websocket"]
        assert req.header_all("Connection") == ["upgrade"]
        payload = os.urandom(1000)
        s.sendall(ws_frame(payload, 2, b"\x01\x02\x03\x04"))
        assert ws_read_frame(rd) == (2, payload)
        s.close()


def test_websocket_accepted_in_any_case(eddy):
    """The 101's Upgrade compares as a token: any case."""
    handle, relayed = switching("WebSocket")
    with Backend(handle) as b:
        e = eddy(conf(b))
        s = e.connect()
        s.settimeout(5)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n")
        rd = Reader(s)
        status, headers, _ = split_response(rd.until(b"\r\n\r\n"))
        assert status == 101
        assert headers["upgrade"] == ["websocket"]
        s.sendall(b"ping")
        assert rd.exactly(4) == b"ping"
        s.close()
        assert relayed == [b"ping"]
