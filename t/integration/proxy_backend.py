"""Small HTTP/1.1 backends for the proxy tests (stdlib only).

Backend is a threaded server on a raw loopback socket that records every
request exactly as received (head bytes, body bytes with their framing)
and counts connections.  A handler decides each answer:

    def handler(req, conn):
        return response(200, b"hi")        # bytes to send, keep-alive
        return response(...), CLOSE        # send, then close
        return CLOSE                       # close without answering
        return TAKEN                       # the handler used conn itself

Usage:

    with Backend(handler) as b:
        ... b.port, b.requests, b.connections ...
"""

import base64
import hashlib
import re
import socket
import struct
import threading
import time

CLOSE = "close"
TAKEN = "taken"


class Request:
    def __init__(self, head, raw_body, body, conn_index):
        self.head = head                    # bytes, up to the empty line
        self.raw_body = raw_body            # bytes as received (framing)
        self.body = body                    # decoded bytes
        self.conn_index = conn_index        # which connection (0-based)
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = lines[0].split(" ", 2)
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.headers.append((name, value.strip()))

    def header(self, name, default=None):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def path(self):
        return self.target


def response(status=200, body=b"", headers=(), reason="OK", length=True,
             version="HTTP/1.1"):
    """Bytes of a response; Content-Length added unless length is False."""
    if isinstance(body, str):
        body = body.encode()
    head = "%s %d %s\r\n" % (version, status, reason)
    for name, value in headers:
        head += "%s: %s\r\n" % (name, value)
    if length:
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode("latin-1") + b"\r\n" + body


def chunked(*pieces):
    """A chunked body made of the given pieces, with the last chunk."""
    out = b""
    for p in pieces:
        if isinstance(p, str):
            p = p.encode()
        out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


def echo_handler(req, conn):
    """200 with "METHOD TARGET" and the decoded body."""
    return response(200, ("%s %s\n" % (req.method, req.target)).encode()
                    + req.body, [("Content-Type", "text/plain")])


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        b = self.sock.recv(65536)
        if not b:
            raise EOFError
        self.buf += b

    def until(self, delim):
        while delim not in self.buf:
            self.fill()
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Backend:
    def __init__(self, handler=echo_handler, host="127.0.0.1", port=0,
                 family=socket.AF_INET, path=None, backlog=128, tls=None):
        self.handler = handler
        self.requests = []
        self.connections = 0
        # With tls (a server ssl.SSLContext), connections are TLS; each
        # handshake's outcome goes to tls_info, in connection order:
        # {"sni", "reused", "version", "alpn"} or {"error"}.
        self.tls = tls
        self.tls_info = {}
        self.snis = []          # every server name received, in order
        if tls is not None:
            tls.sni_callback = self._on_sni
        self.lock = threading.Lock()
        self.socks = []
        self.closed = False
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            self.port = None
        else:
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(backlog)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def wait_requests(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= n:
                return True
            time.sleep(0.01)
        return False

    def _accept(self):
        while not self.closed:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                index = self.connections
                self.connections += 1
                self.socks.append(s)
            threading.Thread(target=self._serve, args=(s, index),
                             daemon=True).start()

    def _read_request(self, rd, index):
        head = rd.until(b"\r\n\r\n")
        req = Request(head[:-2], b"", b"", index)
        te = (req.header("Transfer-Encoding") or "").lower()
        cl = req.header("Content-Length")
        raw = b""
        body = b""
        if "chunked" in te:
            while True:
                line = rd.until(b"\r\n")
                raw += line
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while True:
                        t = rd.until(b"\r\n")
                        raw += t
                        if t == b"\r\n":
                            break
                    break
                data = rd.exactly(size + 2)
                raw += data
                body += data[:-2]
        elif cl is not None:
            raw = body = rd.exactly(int(cl))
        req.raw_body = raw
        req.body = body
        return req

    def _on_sni(self, sock, name, ctx):
        sock.sni_seen = name
        with self.lock:
            self.snis.append(name)

    def _handshake(self, s, index):
        """The TLS socket over s, or None when the handshake failed."""
        s.settimeout(10)
        try:
            t = self.tls.wrap_socket(s, server_side=True)
        except (OSError, ValueError) as e:
            self.tls_info[index] = {"error": str(e)}
            s.close()
            return None
        self.tls_info[index] = {
            "sni": getattr(t, "sni_seen", None),
            "reused": t.session_reused,
            "version": t.version(),
            "alpn": t.selected_alpn_protocol(),
        }
        with self.lock:
            self.socks.append(t)
        return t

    def _serve(self, s, index):
        if self.tls is not None:
            s = self._handshake(s, index)
            if s is None:
                return
        rd = _Reader(s)
        try:
            while True:
                try:
                    req = self._read_request(rd, index)
                except (EOFError, OSError, ValueError):
                    return
                with self.lock:
                    self.requests.append(req)
                out = self.handler(req, s)
                close = False
                if out == TAKEN:
                    return
                if out == CLOSE:
                    return
                if isinstance(out, tuple):
                    out, close = out[0], out[1] == CLOSE
                if out:
                    s.sendall(out)
                if close or (req.header("Connection") or "").lower() \
                        == "close":
                    return
        except OSError:
            pass
        finally:
            try:
                s.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# WebSocket (RFC 6455), just enough for an echo test

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode())
                            .digest()).decode()


def ws_frame(payload, opcode=1, mask=None):
    """One final frame; masked with the 4-byte mask when given."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    head = bytes([0x80 | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def ws_read_frame(sock_reader):
    """(opcode, payload) of the next frame from a _Reader-like object with
    exactly(n)."""
    b0, b1 = sock_reader.exactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", sock_reader.exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", sock_reader.exactly(8))[0]
    mask = sock_reader.exactly(4) if b1 & 0x80 else None
    payload = sock_reader.exactly(n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


def ws_echo_handler(req, conn):
    """Answers the handshake with 101, then echoes text/binary frames until
    a close frame (answered with a close) or EOF."""
    key = req.header("Sec-WebSocket-Key")
    if (req.header("Upgrade") or "").lower() != "websocket" or not key:
        return response(400, b"not a websocket request\n")
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: %s\r\n\r\n"
                  % ws_accept_key(key)).encode())
    rd = _Reader(conn)
    try:
        while True:
            op, payload = ws_read_frame(rd)
            if op == 8:
                conn.sendall(ws_frame(payload, 8))
                break
            if op in (1, 2):
                conn.sendall(ws_frame(payload, op))
    except (EOFError, OSError):
        pass
    try:
        conn.close()
    except OSError:
        pass
    return TAKEN


def Reader(sock):
    return _Reader(sock)


def parse_chunked(data):
    """Decode a complete chunked body; returns (body, rest)."""
    body = b""
    while True:
        m = re.match(rb"([0-9a-fA-F]+)[^\r]*\r\n", data)
        assert m, "bad chunk line in %r" % data[:80]
        size = int(m.group(1), 16)
        data = data[m.end():]
        if size == 0:
            i = data.index(b"\r\n\r\n") if not data.startswith(b"\r\n") \
                else -2
            return body, data[i + 4:]
        body += data[:size]
        assert data[size:size + 2] == b"\r\n"
        data = data[size + 2:]
