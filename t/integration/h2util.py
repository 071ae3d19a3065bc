"""HTTP/2 clients for the tests, on python3-h2 (Debian) and hyperframe.

H2 is a client on h2's state machine with every check of its own turned
off, so that a test can send what a conforming client never would:

    c = H2(port)                          # h2c by prior knowledge
    sid = c.request("/x")
    r = c.wait(sid)                       # r.status, r.headers, r.body,
                                          # r.reset (an error code or None)

Raw speaks frames only (hyperframe): for floods and frames h2 refuses to
make. Both are bounded in time.
"""

import socket
import ssl
import time

import pytest

h2 = pytest.importorskip("h2")

import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.exceptions  # noqa: E402
import h2.settings  # noqa: E402
import hpack  # noqa: E402
from hyperframe import frame as hf  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 7.
NO_ERROR = 0
PROTOCOL_ERROR = 1
INTERNAL_ERROR = 2
FLOW_CONTROL_ERROR = 3
REFUSED_STREAM = 7
CANCEL = 8
COMPRESSION_ERROR = 9
ENHANCE_YOUR_CALM = 11


def tls_context(alpn=("h2", "http/1.1"), ciphers=None, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if ciphers:
        ctx.set_ciphers(ciphers)
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def connect(port, tls=None, sni=None, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls is not None:
        s = tls.wrap_socket(s, server_hostname=sni)
    return s


class Stream:
    def __init__(self, sid):
        self.id = sid
        self.headers = []       # the final response's fields
        self.informational = []
        self.trailers = []
        self.body = b""
        self.ended = False
        self.reset = None       # RST_STREAM error code

    @property
    def status(self):
        v = self.header(":status")
        return int(v) if v is not None else None

    def header(self, name, default=None):
        for n, v in self.headers:
            if n == name:
                return v
        return default

    @property
    def done(self):
        return self.ended or self.reset is not None

    def __repr__(self):
        return "<stream %d status=%s reset=%s %d bytes>" % (
            self.id, self.status, self.reset, len(self.body))


class H2:
    """A client connection on h2's state machine, checks off."""

    def __init__(self, port, tls=None, sni=None, timeout=5.0,
                 settings=None, sock=None):
        self.sock = sock or connect(port, tls, sni, timeout)
        self.sock.settimeout(timeout)
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
            validate_inbound_headers=False,
            normalize_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.streams = {}
        self.goaway = None      # (error code, last stream id)
        self.closed = False
        self.remote_settings = {}
        self.pings = 0
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request(self, path="/", method="GET", headers=(), body=None,
                end=True, authority="localhost", scheme="http",
                pseudo=None):
        sid = self.conn.get_next_available_stream_id()
        if pseudo is None:
            pseudo = [(":method", method), (":scheme", scheme),
                      (":path", path), (":authority", authority)]
        fields = list(pseudo) + list(headers)
        self.streams[sid] = Stream(sid)
        self.conn.send_headers(sid, fields, end_stream=end and body is None)
        if body is not None:
            self.send_data(sid, body, end=end)
        self.flush()
        return sid

    def send_data(self, sid, data, end=False):
        """Sends data as the windows allow, reading meanwhile."""
        deadline = time.monotonic() + 10
        while True:
            room = min(self.conn.local_flow_control_window(sid),
                       self.conn.max_outbound_frame_size)
            if room > 0 or not data:
                piece, data = data[:room], data[room:]
                self.conn.send_data(sid, piece, end_stream=end and not data)
                self.flush()
                deadline = time.monotonic() + 10
                if not data:
                    return
                continue
            if time.monotonic() > deadline:
                raise TimeoutError("no window to send in")
            self.recv(0.5)

    def reset(self, sid, code=CANCEL):
        self.conn.reset_stream(sid, code)
        self.flush()

    def recv(self, timeout=5.0):
        """Reads once (bounded); False at EOF."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            events = []
        for ev in events:
            self._event(ev)
        self.flush()
        return True

    def _event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", 0) or 0)
        if isinstance(ev, h2.events.ResponseReceived):
            st.headers = list(ev.headers)
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            st.informational.append(list(ev.headers))
        elif isinstance(ev, h2.events.TrailersReceived):
            st.trailers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            st.body += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length,
                                                ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if st is not None:
                st.reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value
        elif isinstance(ev, h2.events.PingAckReceived):
            self.pings += 1

    def wait(self, sid, timeout=5.0):
        deadline = time.monotonic() + timeout
        st = self.streams[sid]
        while not st.done and time.monotonic() < deadline:
            if not self.recv(max(0.05, deadline - time.monotonic())):
                break
        return st

    def wait_goaway(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.goaway is None and time.monotonic() < deadline:
            if not self.recv(max(0.05, deadline - time.monotonic())):
                break
        return self.goaway

    def wait_closed(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.recv(max(0.05, deadline - time.monotonic()))
        return self.closed

    def get(self, path="/", **kw):
        return self.wait(self.request(path, **kw))


class Raw:
    """Frames only: the preface and an empty SETTINGS, then whatever the
    test sends; frames read back are hyperframe objects."""

    def __init__(self, port, tls=None, timeout=5.0, settings=True):
        self.sock = connect(port, tls, None, timeout)
        self.enc = hpack.Encoder()
        self.frames = []
        self.buf = b""
        self.closed = False
        self.autoack = True     # ACK the server's SETTINGS
        out = PREFACE
        if settings:
            out += hf.SettingsFrame(0).serialize()
        self.sock.sendall(out)

    def send(self, *frames):
        data = b"".join(f if isinstance(f, bytes) else f.serialize()
                        for f in frames)
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def headers(self, sid, fields, end_stream=True, end_headers=True):
        f = hf.HeadersFrame(sid)
        f.data = self.enc.encode(fields)
        f.flags = set()
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        return f

    def get_fields(self, path="/", authority="localhost"):
        return [(":method", "GET"), (":scheme", "http"), (":path", path),
                (":authority", authority)]

    def recv(self, timeout=2.0):
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buf += data
        while len(self.buf) >= 9:
            f, length = hf.Frame.parse_frame_header(self.buf[:9])
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self.frames.append(f)
            if isinstance(f, hf.SettingsFrame) and "ACK" not in f.flags \
                    and self.autoack:
                self.send(hf.SettingsFrame(0, flags=["ACK"]))
        return True

    def until(self, pred, timeout=5.0):
        """Reads until pred(frame) holds for a frame read; returns it."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for f in self.frames[seen:]:
                if pred(f):
                    return f
            seen = len(self.frames)
            if not self.recv(max(0.05, deadline - time.monotonic())):
                for f in self.frames[seen:]:
                    if pred(f):
                        return f
                return None
        return None

    def goaway(self, timeout=5.0):
        return self.until(lambda f: isinstance(f, hf.GoAwayFrame), timeout)

    def rst(self, sid, timeout=5.0):
        return self.until(lambda f: isinstance(f, hf.RstStreamFrame)
                          and f.stream_id == sid, timeout)

    def wait_closed(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.recv(max(0.05, deadline - time.monotonic()))
        return self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def log_lines(e, name, n, timeout=3.0):
    """Waits (bounded) until logs/name has n lines; returns the text."""
    from conftest import wait_for

    path = e.prefix / "logs" / name

    def check():
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return None
        return text if len(text.splitlines()) >= n else None

    got = wait_for(check, timeout)
    assert got, "fewer than %d lines in %s" % (n, name)
    return got
