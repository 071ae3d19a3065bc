"""Response trailers from a chunked upstream (spec/http2.md, Requests and
proxy): over HTTP/2 a last HEADERS frame with END_STREAM after the DATA,
over HTTP/1.1 the trailer section of the chunked body when the client
sent "TE: trailers", else dropped. Fields RFC 9110 6.5.1 keeps out of
trailers (framing, routing, authentication, controls, content format)
and hop-by-hop fields never pass. Checked as frames and bytes on the
wire."""

import socket

import hpack
import pytest

from h2util import Raw, hf
from proxy_backend import Backend

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    locations:
      /up/:
        proxy: {pass: "http://127.0.0.1:@BACKEND@"}
"""

TRAILED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
           b"Trailer: X-Checksum\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n"
           b"0\r\n"
           b"X-Checksum:  abc123 \r\n"
           b"Content-Length: 11\r\n"
           b"Set-Cookie: a=b\r\n"
           b"Connection: close\r\n"
           b"X-Other:v2\r\n"
           b"\r\n")
EMPTY_TRAILED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"0\r\nX-Only: 1\r\n\r\n")
PLAIN = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5\r\nhello\r\n0\r\n\r\n")


def handler(req, conn):
    if req.path == "/up/empty":
        return EMPTY_TRAILED
    if req.path == "/up/plain":
        return PLAIN
    return TRAILED


@pytest.fixture
def srv(eddy):
    with Backend(handler) as b:
        yield eddy(CONFIG.replace("@BACKEND@", str(b.port)))


def h2_frames(srv, path):
    raw = Raw(srv.port)
    raw.send(raw.headers(1, raw.get_fields(path)))
    end = raw.until(lambda f: f.stream_id == 1 and (
        "END_STREAM" in f.flags or isinstance(f, hf.RstStreamFrame)))
    raw.close()
    assert end is not None
    return [f for f in raw.frames if f.stream_id == 1]


def decode(raw_frames):
    d = hpack.Decoder()
    out = []
    for f in raw_frames:
        if isinstance(f, hf.HeadersFrame):
            out.append(("HEADERS", d.decode(f.data, raw=False),
                        "END_STREAM" in f.flags))
        elif isinstance(f, hf.DataFrame):
            out.append(("DATA", f.data, "END_STREAM" in f.flags))
        else:
            out.append((type(f).__name__, None, False))
    return out


def test_h2_trailers_are_a_last_headers_frame(srv):
    frames = decode(h2_frames(srv, "/up/x"))
    kinds = [k for k, _, _ in frames]
    assert kinds[0] == "HEADERS" and kinds[-1] == "HEADERS", frames
    body = b"".join(d for k, d, _ in frames if k == "DATA")
    assert body == b"hello world"
    # END_STREAM only on the trailers; no DATA carries it.
    assert [e for k, _, e in frames if k == "DATA"] == \
        [False] * kinds.count("DATA")
    assert frames[-1][2] is True
    # Lower-case names, the value without its whitespace; framing,
    # Set-Cookie and hop-by-hop fields left out.
    assert frames[-1][1] == [("x-checksum", "abc123"), ("x-other", "v2")]


def test_h2_trailers_without_body_bytes(srv):
    frames = decode(h2_frames(srv, "/up/empty"))
    assert frames[-1][0] == "HEADERS" and frames[-1][2] is True
    assert frames[-1][1] == [("x-only", "1")]
    assert b"".join(d for k, d, _ in frames if k == "DATA") == b""


def test_h2_no_trailers_ends_on_data(srv):
    frames = decode(h2_frames(srv, "/up/plain"))
    assert [k for k, _, _ in frames] == ["HEADERS", "DATA"]
    assert frames[-1] == ("DATA", b"hello", True)


def h1(srv, path, te):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n"
              % (path.encode(), b"TE: trailers\r\n" if te else b""))
    data = b""
    while not data.endswith(b"\r\n\r\n") or b"\r\n0\r\n" not in data:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return data


def test_h1_trailers_with_te_trailers(srv):
    data = h1(srv, "/up/x", te=True)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body.endswith(b"0\r\nX-Checksum: abc123\r\nX-Other: v2\r\n\r\n"), \
        body
    assert b"Set-Cookie" not in body and b"Content-Length" not in body


def test_h1_trailers_dropped_without_te(srv):
    data = h1(srv, "/up/x", te=False)
    head, _, body = data.partition(b"\r\n\r\n")
    assert body.endswith(b"\r\nhello world\r\n0\r\n\r\n") or \
        body.endswith(b"world\r\n0\r\n\r\n"), body
    assert b"X-Checksum" not in body
