"""Streaming through the proxy with bounded memory (config.md proxy
buffer_size) and the WebSocket tunnel after a 101."""

import os
import socket
import threading
import time

from conftest import split_response
from proxy_backend import Backend, Reader, Request, TAKEN, response, \
    ws_accept_key, ws_echo_handler, ws_frame, ws_read_frame


def conf(text, **ports):
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


STREAM = """
    workers: 1
    client_max_body_size: 0
    upstreams:
      app:
        keepalive: 2
        servers: [127.0.0.1:@B@]
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: app, buffer_size: 64k}
"""

MIB = 1024 * 1024


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_kib(pid)
        self.running = True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


def big_handler(req, conn):
    if req.target.startswith("/big"):
        total = int(req.target.split("=")[1])
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                     % total)
        block = os.urandom(MIB)
        sent = 0
        while sent < total:
            n = min(MIB, total - sent)
            conn.sendall(block[:n])
            sent += n
        return None
    if req.target == "/upload":
        return response(200, b"%d\n" % len(req.body))
    return response(200, b"small")


def test_slow_client_large_response_bounded_memory(eddy):
    total = 200 * MIB
    with Backend(big_handler) as b:
        e = eddy(conf(STREAM, B=b.port))
        pid = e.wait_workers(1)[0]
        assert e.get("/warm").body == b"small"
        base = rss_kib(pid)
        sampler = RssSampler(pid)
        sampler.start()
        s = e.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: a\r\n\r\n" % total)
        s.settimeout(10)
        got = 0
        head = b""
        rate = 40 * MIB          # bytes per second: slower than eddy
        t0 = time.monotonic()
        while True:
            data = s.recv(256 * 1024)
            if not data:
                break
            if not head:
                head, _, data = data.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200")
            got += len(data)
            if got >= total:
                break
            ahead = got / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        s.close()
        peak = sampler.stop()
        assert got == total
        growth = (peak - base) / 1024
        assert growth < 20, "worker RSS grew by %.1f MiB" % growth
        # The upstream connection was kept and works.
        assert e.get("/after").body == b"small"


class SlowBackend(Backend):
    """Reads request bodies itself, at about 40 MiB/s, keeping only their
    length (req.length)."""

    def _read_request(self, rd, index):
        head = rd.until(b"\r\n\r\n")
        req = Request(head[:-2], b"", b"", index)
        n = int(req.header("Content-Length"))
        got = len(rd.buf)
        rd.buf = b""
        t0 = time.monotonic()
        while got < n:
            chunk = rd.sock.recv(min(256 * 1024, n - got))
            if not chunk:
                raise EOFError
            got += len(chunk)
            ahead = got / (40 * MIB) - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        req.length = got
        return req


def test_large_upload_to_slow_upstream_bounded_memory(eddy):
    total = 64 * MIB

    def answer(req, conn):
        return response(200, b"%d\n" % req.length)

    with SlowBackend(answer) as b:
        e = eddy(conf(STREAM, B=b.port))
        pid = e.wait_workers(1)[0]
        base = rss_kib(pid)
        sampler = RssSampler(pid)
        sampler.start()
        s = e.connect()
        s.sendall(b"PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
                  b"\r\n" % total)
        block = b"u" * MIB
        for _ in range(total // MIB):
            s.sendall(block)
        s.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.close()
        peak = sampler.stop()
        status, headers, body = split_response(data)
        assert status == 200 and body == b"%d\n" % total
        growth = (peak - base) / 1024
        assert growth < 20, "worker RSS grew by %.1f MiB" % growth


WS = """
    workers: 1
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /ws:
            proxy: {pass: "http://127.0.0.1:@B@", read_timeout: 5s}
          /nows:
            proxy: {pass: "http://127.0.0.1:@B@", websocket: false}
"""


def ws_handshake(e, path="/ws"):
    s = e.connect()
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    s.sendall(("GET %s HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
    rd = Reader(s)
    s.settimeout(5)
    head = rd.until(b"\r\n\r\n")
    return s, rd, head, key


def test_websocket_echo(eddy):
    with Backend(ws_echo_handler) as b:
        e = eddy(conf(WS, B=b.port))
        s, rd, head, key = ws_handshake(e)
        status, headers, _ = split_response(head)
        assert status == 101
        assert headers["upgrade"] == ["websocket"]
        assert headers["connection"] == ["upgrade"]
        assert headers["sec-websocket-accept"] == [ws_accept_key(key)]
        assert "content-length" not in headers
        req = b.requests[0]
        assert req.header("Upgrade") == "websocket"
        assert req.header("Connection") == "upgrade"
        mask = b"\x01\x02\x03\x04"
        s.sendall(ws_frame("hello", 1, mask))
        assert ws_read_frame(rd) == (1, b"hello")
        big = os.urandom(300000)
        s.sendall(ws_frame(big, 2, mask))
        assert ws_read_frame(rd) == (2, big)
        for i in range(20):
            s.sendall(ws_frame("m%d" % i, 1, mask))
        for i in range(20):
            assert ws_read_frame(rd) == (1, b"m%d" % i)
        s.sendall(ws_frame(b"\x03\xe8", 8, mask))
        assert ws_read_frame(rd) == (8, b"\x03\xe8")
        # The upstream closed: so does eddy.
        s.settimeout(5)
        try:
            rest = s.recv(10)
        except ConnectionResetError:
            rest = b""
        assert rest == b""
        s.close()


def test_websocket_client_closes_first(eddy):
    with Backend(ws_echo_handler) as b:
        e = eddy(conf(WS, B=b.port))
        s, rd, head, key = ws_handshake(e)
        assert head.startswith(b"HTTP/1.1 101 ")
        s.sendall(ws_frame("bye", 1, b"abcd"))
        s.shutdown(socket.SHUT_WR)
        assert ws_read_frame(rd) == (1, b"bye")
        s.close()
        # The worker goes on serving.
        s2, rd2, head2, _ = ws_handshake(e)
        assert head2.startswith(b"HTTP/1.1 101 ")
        s2.close()


def test_websocket_disabled(eddy):
    with Backend(ws_echo_handler) as b:
        e = eddy(conf(WS, B=b.port))
        s, rd, head, key = ws_handshake(e, "/nows")
        s.close()
        assert head.startswith(b"HTTP/1.1 400 ")
        assert b.requests[0].header("Upgrade") is None


def test_websocket_idle_timeout(eddy):
    def idle(req, conn):
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                     b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        time.sleep(5)
        return TAKEN
    with Backend(idle) as b:
        e = eddy(conf(WS.replace("read_timeout: 5s", "read_timeout: 300ms"),
                      B=b.port))
        s, rd, head, key = ws_handshake(e)
        assert head.startswith(b"HTTP/1.1 101 ")
        t = time.monotonic()
        s.settimeout(5)
        assert s.recv(10) == b""
        assert time.monotonic() - t < 2
        s.close()
