"""Raw-socket HTTP/1.x helpers for the integration tests (stdlib only).

The tests speak bytes, not http.client: they must send malformed requests,
pipeline, dribble a request byte by byte and see exactly what came back
(including a bare CR or a missing CRLF).  Everything here is bounded in
time.

    with Client(e.port) as c:
        c.send(b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
        r = c.response()            # a Resp: status, headers, body
        assert r.status == 200

    data, closed = exchange(e.port, b"...")   # send, read until close
    rs = parse_all(data)                      # every response in data

Backend is a tiny upstream for a `proxy` location: a handler that really
reads the request body (the `return` handler discards it).
"""

import re
import socket
import threading
import time

TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
STATUS_RE = re.compile(rb"HTTP/(1\.[01]) (\d{3})(?: ([^\r\n]*))?\Z")

DEFAULT_TIMEOUT = 5.0


class Resp:
    """One parsed HTTP response."""

    def __init__(self, version, status, reason, headers, body, head,
                 raw, chunked=False, trailers=()):
        self.version = version          # "1.0" or "1.1"
        self.status = status            # int
        self.reason = reason            # str
        self.headers = headers          # [(name, value)] in order, as sent
        self.body = body                # bytes (dechunked)
        self.head = head                # raw head bytes, without CRLFCRLF
        self.raw = raw                  # the whole response as received
        self.chunked = chunked
        self.trailers = list(trailers)

    def header(self, name, default=None):
        """The value of the first field called name (case-insensitive)."""
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def headers_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def has(self, name):
        return bool(self.headers_all(name))

    def tokens(self, name):
        """Lower-case comma-separated tokens of every field called name
        (e.g. Connection)."""
        out = set()
        for v in self.headers_all(name):
            out.update(t.strip().lower() for t in v.split(",") if t.strip())
        return out

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def closes(self):
        return "close" in self.tokens("Connection")

    def __repr__(self):
        return "<Resp %s %d %r body=%r>" % (self.version, self.status,
                                            self.headers, self.body[:200])


class ParseError(ValueError):
    pass


def _parse_head(head):
    """(version, status, reason, headers) of a response head (without the
    final CRLFCRLF).  Strict: CRLF line ends only, token names."""
    lines = head.split(b"\r\n")
    for line in lines:
        if b"\r" in line or b"\n" in line:
            raise ParseError("bare CR or LF in response head: %r" % head)
    m = STATUS_RE.match(lines[0])
    if not m:
        raise ParseError("bad status line %r" % lines[0])
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not TOKEN_RE.match(name):
            raise ParseError("bad header line %r" % line)
        headers.append((name.decode("latin-1"),
                        value.strip(b" \t").decode("latin-1")))
    return (m.group(1).decode(), int(m.group(2)),
            (m.group(3) or b"").decode("latin-1"), headers)


def _content_length(headers):
    values = [v for k, v in headers if k.lower() == "content-length"]
    if not values:
        return None
    if len(set(values)) != 1 or not re.fullmatch(r"\d+", values[0]):
        raise ParseError("bad Content-Length %r" % values)
    return int(values[0])


def _is_chunked(headers):
    te = ",".join(v for k, v in headers if k.lower() == "transfer-encoding")
    codings = [t.strip().lower() for t in te.split(",") if t.strip()]
    return bool(codings) and codings[-1] == "chunked"


def decode_chunked(buf, pos):
    """Decode a chunked body starting at buf[pos].  Returns (body,
    trailers, end position) or None when more bytes are needed.  Raises
    ParseError on bad framing."""
    body = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > 4096:
                raise ParseError("chunk size line too long")
            return None
        line = buf[pos:eol]
        size_s = line.split(b";", 1)[0]
        if not re.fullmatch(rb"[0-9A-Fa-f]{1,16}", size_s):
            raise ParseError("bad chunk size line %r" % line)
        size = int(size_s, 16)
        pos = eol + 2
        if size == 0:
            trailers = []
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                line = buf[pos:eol]
                pos = eol + 2
                if not line:
                    return b"".join(body), trailers, pos
                name, _, value = line.partition(b":")
                trailers.append((name.decode("latin-1"),
                                 value.strip().decode("latin-1")))
        if len(buf) < pos + size + 2:
            return None
        body.append(buf[pos:pos + size])
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise ParseError("chunk data not followed by CRLF")
        pos += size + 2


def parse_response(buf, head_request=False, eof=False):
    """Parse the response at the start of buf.

    Returns (Resp, bytes consumed), or None when buf does not hold a whole
    response yet.  eof tells that the peer closed: a body without length
    then ends at the end of buf.  Raises ParseError on a malformed
    response (or a truncated one at eof)."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        if eof and buf:
            raise ParseError("truncated response head: %r" % buf[:300])
        return None
    head = buf[:i]
    pos = i + 4
    version, status, reason, headers = _parse_head(head)
    chunked = False
    trailers = []
    if head_request or 100 <= status < 200 or status in (204, 304):
        body = b""
    elif _is_chunked(headers):
        chunked = True
        got = decode_chunked(buf, pos)
        if got is None:
            if eof:
                raise ParseError("truncated chunked body: %r" % buf[:300])
            return None
        body, trailers, pos = got
    else:
        n = _content_length(headers)
        if n is not None:
            if len(buf) < pos + n:
                if eof:
                    raise ParseError("body shorter than Content-Length %d: "
                                     "%r" % (n, buf[:300]))
                return None
            body = buf[pos:pos + n]
            pos += n
        else:
            if not eof:
                return None
            body = buf[pos:]
            pos = len(buf)
    return (Resp(version, status, reason, headers, body, head, buf[:pos],
                 chunked, trailers), pos)


def parse_all(data, head_indexes=()):
    """Every response in data (bytes read until the peer closed).
    head_indexes: positions of the responses that answer a HEAD.
    Returns (list of Resp, leftover bytes that are not a response)."""
    out = []
    pos = 0
    while pos < len(data):
        got = parse_response(data[pos:], head_request=len(out) in
                             head_indexes, eof=True)
        if got is None:
            break
        r, n = got
        out.append(r)
        pos += n
    return out, data[pos:]


def parse_one(data, head_request=False):
    """The single response in data; fails when there is more than one."""
    rs, rest = parse_all(data, (0,) if head_request else ())
    assert len(rs) == 1 and rest == b"", \
        "expected exactly one response, got %r + %r" % (rs, rest[:200])
    return rs[0]


# --------------------------------------------------------------------------
# connections


class Client:
    """A raw connection with its own read buffer, so that pipelined
    responses are split exactly."""

    def __init__(self, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def send_slowly(self, data, step=1, delay=0.002):
        """Send data step bytes at a time with a pause in between."""
        for i in range(0, len(data), step):
            self.sock.sendall(data[i:i + step])
            time.sleep(delay)

    def _recv(self, deadline):
        """Read more into buf; False on EOF/reset, raise on timeout."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out; have %r" % self.buf[:300])
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            b = b""
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def response(self, head_request=False, timeout=None):
        """The next complete response (interim 1xx ones included)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            got = parse_response(self.buf, head_request, eof=self.eof)
            if got is not None:
                r, n = got
                self.buf = self.buf[n:]
                return r
            if not self._recv(deadline):
                got = parse_response(self.buf, head_request, eof=True)
                if got is None:
                    raise AssertionError("connection closed before a "
                                         "response: %r" % self.buf[:300])
                r, n = got
                self.buf = self.buf[n:]
                return r

    def responses(self, n, head_indexes=(), timeout=None):
        return [self.response(i in head_indexes, timeout) for i in range(n)]

    def read_until_close(self, timeout=None):
        """Everything until the peer closes or timeout passes; returns
        (bytes, closed), including what was already buffered."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while self._recv(deadline):
                pass
        except socket.timeout:
            pass
        data, self.buf = self.buf, b""
        return data, self.eof

    def wait_closed(self, timeout=None):
        """Assert the peer closes within timeout; return the bytes that
        arrived before (normally none)."""
        data, closed = self.read_until_close(timeout)
        assert closed, "connection still open after %ss; got %r" % (
            timeout or self.timeout, data[:300])
        return data

    def idle_for(self, seconds):
        """Read for seconds; return (bytes, closed).  For checking that
        nothing arrives."""
        return self.read_until_close(seconds)


def exchange(port, data, timeout=3.0, shut_wr=False, host="127.0.0.1"):
    """Send data on a new connection and read until the peer closes or
    nothing arrives for timeout seconds (10 s at most in all).
    Returns (bytes, closed_by_peer)."""
    s = socket.create_connection((host, port), timeout=timeout)
    chunks = []
    closed = False
    try:
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + max(timeout, 10)
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
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks), closed


def request(port, data, timeout=3.0, head_request=False):
    """Send data (normally one request ending with Connection: close or an
    HTTP/1.0 one) and return (first Resp, closed, all responses)."""
    raw, closed = exchange(port, data, timeout)
    rs, rest = parse_all(raw, (0,) if head_request else ())
    assert rs, "no response to %r; got %r" % (data[:200], raw[:300])
    assert rest == b"", "junk after the responses: %r" % rest[:200]
    return rs[0], closed, rs


def get(target="/", host="a", headers=(), version="1.1", method="GET",
        body=b"", close=False):
    """Request bytes: method target version, Host (unless host is None),
    extra headers [(name, value)] or raw b"Name: value" lines, body."""
    lines = [("%s %s HTTP/%s" % (method, target, version)).encode()]
    if host is not None:
        lines.append(b"Host: " + host.encode())
    for h in headers:
        if isinstance(h, bytes):
            lines.append(h)
        else:
            lines.append(("%s: %s" % h).encode("latin-1"))
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def assert_error_closed(data, closed, status, http10=False):
    """data is what came back to a malformed request: exactly one error
    response with the status, Connection: close (which an answer to an
    HTTP/1.0 request may leave implicit), a small HTML body naming the
    status, then EOF."""
    assert data, "no response at all (expected %d)" % status
    rs, rest = parse_all(data)
    assert rs, "no parsable response in %r" % data[:300]
    r = rs[0]
    assert r.status == status, "expected %d, got %r" % (status, r)
    assert len(rs) == 1 and rest == b"", \
        "more than one response after a malformed request: %r %r" % (
            rs, rest[:200])
    if not (http10 and r.version == "1.0"):
        assert r.closes or (http10 and "keep-alive" not in
                            r.tokens("Connection")), \
            "no Connection: close on %r" % r
    assert closed, "connection not closed after %d" % status
    assert str(status).encode() in r.body, r.body
    return r


# --------------------------------------------------------------------------
# a minimal upstream


def read_request(sock, deadline):
    """Read one HTTP/1.1 request from sock (Content-Length or chunked
    body).  Returns (head bytes, body bytes) or None on EOF/timeout."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except OSError:
            return None
        if not b:
            return None
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
    while True:
        if _is_chunked(headers):
            try:
                got = decode_chunked(rest, 0)
            except ParseError:
                return head, None
            if got is not None:
                return head, got[0]
        else:
            n = _content_length(headers) or 0
            if len(rest) >= n:
                return head, rest[:n]
        left = deadline - time.monotonic()
        if left <= 0:
            return head, None
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except OSError:
            return head, None
        if not b:
            return head, None
        rest += b


class Backend:
    """An upstream on 127.0.0.1:<port> in a thread.  Each request is
    recorded as (head, body) in .requests and answered 200 with the body
    "got <n> bytes: <body>" and Connection: close."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.requests = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        try:
            got = read_request(conn, time.monotonic() + 10)
            if got is None:
                return
            head, body = got
            self.requests.append((head, body))
            if body is None:
                return
            out = b"got %d bytes: " % len(body) + body
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(out) + out)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        try:
            self.listener.close()
        except OSError:
            pass
        self._thread.join(2)
