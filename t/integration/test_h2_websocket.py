"""WebSocket over HTTP/2 (RFC 8441, spec/http2.md): an extended CONNECT
relayed to an HTTP/1.1 WebSocket upstream (GET with Upgrade, a fresh
key, the accept checked by eddy), :status 200 then DATA both ways; a bad
accept is a 502, another answer is relayed; other handlers answer 405,
another :protocol 501, `enable_connect_protocol: false` makes :protocol
malformed; half-closes both ways; the access log says CONNECT."""

import socket
import time

import pytest

from h2util import H2, PROTOCOL_ERROR, log_lines
from proxy_backend import (CLOSE, TAKEN, Backend, response, ws_accept_key,
                           ws_echo_handler, ws_frame)

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    access_log: {path: logs/access.log, format: "$status $request $request_method"}
    http2: {enable_connect_protocol: %(ecp)s}
    locations:
      /ws:
        proxy: {pass: "http://127.0.0.1:%(port)d", websocket: true}
      /nows:
        proxy: {pass: "http://127.0.0.1:%(port)d", websocket: false}
      /static:
        return: {status: 200, body: "x\n"}
"""


def start(eddy, port, ecp="true"):
    return eddy(CONFIG % {"port": port, "ecp": ecp})


def connect(c, path="/ws/chat", protocol="websocket", extra=()):
    return c.request(pseudo=[(":method", "CONNECT"),
                             (":protocol", protocol), (":scheme", "http"),
                             (":path", path), (":authority", "w.test")],
                     headers=[("sec-websocket-version", "13")]
                     + list(extra), end=False)


def wait_headers(c, sid, timeout=5.0):
    deadline = time.monotonic() + timeout
    st = c.streams[sid]
    while not st.headers and not st.done and time.monotonic() < deadline:
        c.recv(0.2)
    return st


def read_body(c, sid, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    st = c.streams[sid]
    while len(st.body) < n and not st.done and time.monotonic() < deadline:
        c.recv(0.2)
    return st.body


def test_echo_over_extended_connect(eddy):
    seen = []

    def handler(req, conn):
        seen.append(req)
        return ws_echo_handler(req, conn)

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        assert c.remote_settings == {} or True
        sid = connect(c, extra=[("sec-websocket-protocol", "chat")])
        st = wait_headers(c, sid)
        assert st.status == 200, st
        assert st.header("sec-websocket-accept") is None
        req = seen[0]
        assert req.method == "GET" and req.target == "/ws/chat"
        assert req.header("Upgrade").lower() == "websocket"
        assert "upgrade" in req.header("Connection").lower()
        assert req.header("Sec-WebSocket-Version") == "13"
        assert req.header("Sec-WebSocket-Protocol") == "chat"
        assert len(req.header("Sec-WebSocket-Key")) == 24
        c.send_data(sid, ws_frame(b"hello", mask=b"abcd"))
        assert read_body(c, sid, 7) == ws_frame(b"hello")
        c.send_data(sid, ws_frame(b"x" * 70000, 2, mask=b"abcd"))
        want = ws_frame(b"hello") + ws_frame(b"x" * 70000, 2)
        assert read_body(c, sid, len(want), 10) == want
        # A close frame: the backend answers it and closes: END_STREAM.
        c.send_data(sid, ws_frame(b"", 8, mask=b"abcd"))
        st = c.wait(sid)
        # END_STREAM, then RST_STREAM(NO_ERROR): eddy wants no more.
        assert st.ended and st.reset in (None, 0)
        c.close()
        log = log_lines(e, "access.log", 1)
        assert "200 CONNECT /ws/chat HTTP/2.0 CONNECT" in log


def test_client_end_stream_half_closes_upstream(eddy):
    def handler(req, conn):
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n"
                      % ws_accept_key(req.header("Sec-WebSocket-Key")))
                     .encode())
        data = b""
        while True:
            d = conn.recv(65536)
            if not d:
                break
            data += d
        conn.sendall(b"got:" + data)
        conn.close()
        return TAKEN

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        sid = connect(c)
        assert wait_headers(c, sid).status == 200
        c.send_data(sid, b"abc", end=True)
        st = c.wait(sid)
        assert st.body == b"got:abc" and st.ended
        c.close()


def test_bad_accept_is_502(eddy):
    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                     b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: bm9wZQ==\r\n\r\n")
        return CLOSE

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        st = c.wait(connect(c))
        assert st.status == 502
        c.close()


def test_other_answer_relayed(eddy):
    def handler(req, conn):
        return response(403, b"no\n")

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        st = c.wait(connect(c))
        assert st.status == 403 and st.body == b"no\n"
        c.close()


def test_other_handlers_405_and_other_protocol_501(eddy):
    with Backend(ws_echo_handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        assert c.wait(connect(c, "/static")).status == 405
        assert c.wait(connect(c, "/nows/x")).status == 405
        assert c.wait(connect(c, protocol="foo")).status == 501
        c.close()


def test_disabled_connect_protocol_is_malformed(eddy):
    with Backend(ws_echo_handler) as b:
        e = start(eddy, b.port, ecp="false")
        c = H2(e.port)
        c.recv(0.3)
        assert c.remote_settings.get(0x8) == 0
        st = c.wait(connect(c))
        assert st.reset == PROTOCOL_ERROR
        c.close()


def test_upstream_error_is_connect_error(eddy):
    def handler(req, conn):
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n"
                      % ws_accept_key(req.header("Sec-WebSocket-Key")))
                     .encode())
        time.sleep(0.2)
        # A reset, not a clean end.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
        return TAKEN

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        sid = connect(c)
        assert wait_headers(c, sid).status == 200
        st = c.wait(sid)
        assert st.reset == 0xa   # CONNECT_ERROR
        c.close()
