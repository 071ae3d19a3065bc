"""HTTP/2 (spec/http2.md): h2c by prior knowledge beside HTTP/1.x on one
port, every handler and filter answering as on HTTP/1.1 (status, headers
but framing, body), the variables and the access log, request bodies to
a proxied backend, trailers and END_STREAM placement, checked as frames
on the wire with python3-h2."""

import gzip
import hashlib
import os
import socket
import time

import pytest

from h2util import H2, PREFACE, Raw, hf, log_lines
from proxy_backend import Backend, chunked, response

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i
                for i in range(2000))
BIG = os.urandom(300 * 1024)

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port0}", http2: true}]
    root: html
    access_log: {path: logs/access.log, format: "$request $status $server_protocol [$http2] [$http2_stream_id] $connection_requests $request_length"}
    gzip: {enabled: true, types: [text/plain]}
    locations:
      /:
        static: {}
      /auto/:
        static: {autoindex: true}
      /pre/:
        static: {precompressed: [gzip]}
      = /vars:
        return: {status: 200, body: "$server_protocol|$http2|$http2_stream_id|$connection_requests|$request|$scheme|$host\n"}
      = /redir:
        redirect: {to: /target, status: 301}
      = /deny:
        access: [{deny: all}]
        return: 200
      = /hdr:
        return: {status: 200, body: "h\n"}
        headers: {set: {X-One: "1", Upgrade: "y", Keep-Alive: "z"}}
      /up/:
        proxy: {pass: "http://127.0.0.1:@BACKEND@"}
        client_max_body_size: 100m
      = /limited:
        limit_req: {key: $remote_addr, rate: 1r/m, burst: 0}
        return: {status: 200, body: "ok\n"}
      = /errpage:
        return: 404
        error_pages: {404: /err.html}
  - listen: [{address: "127.0.0.1:{port1}"}]
    root: html
    locations:
      /:
        static: {}
"""


def start(eddy, backend_port=None):
    from conftest import free_port
    e = eddy(CONFIG.replace("@BACKEND@", str(backend_port or free_port())),
             ports=2, start=False)
    e.write_file("html/index.html", b"<p>hello</p>\n")
    e.write_file("html/t.txt", TEXT)
    e.write_file("html/big.bin", BIG)
    e.write_file("html/auto/a.txt", b"a\n")
    e.write_file("html/pre/p.txt", b"plain\n")
    e.write_file("html/pre/p.txt.gz", gzip.compress(b"plain\n"))
    e.write_file("html/err.html", b"custom error\n")
    e.write_file("html/empty.txt", b"")
    return e.start()


@pytest.fixture
def srv(eddy):
    return start(eddy)


def h1(e, path, headers=None, method="GET"):
    return e.request(method, path, headers=headers or {})


def h2get(e, path, headers=(), method="GET", port=None):
    c = H2(port or e.port)
    try:
        st = c.wait(c.request(path, method=method, headers=list(headers)))
    finally:
        c.close()
    return st


FRAMING = {"date", "connection", "keep-alive", "transfer-encoding",
           "content-length", "upgrade", "proxy-connection"}


def fields(pairs):
    return sorted((n.lower(), v) for n, v in pairs
                  if n.lower() not in FRAMING and not n.startswith(":"))


def same(e, path, headers=(), method="GET"):
    """The h1 and h2 answers agree: status, headers but framing, body."""
    a = h1(e, path, dict(headers), method)
    b = h2get(e, path, [(n.lower(), v) for n, v in headers], method)
    assert b.reset is None and b.ended, b
    assert b.status == a.status, (a.status, b)
    ha = fields(a.headers.items() if hasattr(a.headers, "items")
                else a.headers)
    hb = fields(b.headers)
    ba, bb = a.body, b.body
    # multipart/byteranges: a boundary per response.
    for (n, va), (_, vb) in zip(ha, hb):
        if n == "content-type" and "boundary=" in va:
            bnda = va.split("boundary=")[1].encode()
            bndb = vb.split("boundary=")[1].encode()
            ba = ba.replace(bnda, b"B")
            bb = bb.replace(bndb, b"B")
            ha = [(x, y.replace(bnda.decode(), "B")) for x, y in ha]
            hb = [(x, y.replace(bndb.decode(), "B")) for x, y in hb]
    assert hb == ha
    assert bb == ba
    return b


def test_h2c_prior_knowledge_and_http1_on_one_port(srv):
    st = h2get(srv, "/index.html")
    assert st.status == 200 and st.body == b"<p>hello</p>\n"
    assert st.header("content-length") == "13"
    assert st.header("server").startswith("eddy")
    assert st.header("date")
    r = srv.get("/index.html")
    assert r.status == 200 and r.body == b"<p>hello</p>\n"


def test_upgrade_h2c_is_ignored(srv):
    r = srv.request("GET", "/index.html",
                    headers={"Connection": "Upgrade, HTTP2-Settings",
                             "Upgrade": "h2c", "HTTP2-Settings": "AAMAAABkAAQAAP__"})
    assert r.status == 200 and r.body == b"<p>hello</p>\n"


def test_preface_without_http2_is_505(srv):
    port2 = int(srv.format("{port1}"))
    s = socket.create_connection(("127.0.0.1", port2), timeout=3)
    s.sendall(PREFACE)
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except socket.timeout:
        pass
    s.close()
    assert data.startswith(b"HTTP/1.1 505 ")


def test_big_file_byte_exact_and_sendfile_path(srv):
    st = h2get(srv, "/big.bin")
    assert st.status == 200
    assert hashlib.sha256(st.body).digest() == hashlib.sha256(BIG).digest()
    # DATA frames never over 16 KiB (the client's MAX_FRAME_SIZE).


def test_variables_and_access_log(srv):
    c = H2(srv.port)
    a = c.wait(c.request("/vars", authority="example.test"))
    b = c.wait(c.request("/vars", authority="example.test"))
    c.close()
    assert a.body == (b"HTTP/2.0|h2c|1|1|GET /vars HTTP/2.0|http|"
                      b"example.test\n")
    assert b.body.startswith(b"HTTP/2.0|h2c|3|2|")
    r = srv.get("/vars")
    assert r.body.startswith(b"HTTP/1.1|||1|GET /vars HTTP/1.1|")
    log = log_lines(srv, "access.log", 3)
    assert "GET /vars HTTP/2.0 200 HTTP/2.0 [h2c] [1] 1 " in log
    assert "GET /vars HTTP/2.0 200 HTTP/2.0 [h2c] [3] 2 " in log
    assert "GET /vars HTTP/1.1 200 HTTP/1.1 [] [] 1 " in log


def test_head_has_end_stream_on_headers(srv):
    raw = Raw(srv.port)
    raw.send(raw.headers(1, [(":method", "HEAD"), (":scheme", "http"),
                             (":path", "/index.html"),
                             (":authority", "x")]))
    f = raw.until(lambda f: isinstance(f, hf.HeadersFrame)
                  and f.stream_id == 1)
    assert f is not None and "END_STREAM" in f.flags
    raw.close()


def test_empty_body_ends_on_headers(srv):
    raw = Raw(srv.port)
    raw.send(raw.headers(1, raw.get_fields("/empty.txt")))
    f = raw.until(lambda f: isinstance(f, hf.HeadersFrame)
                  and f.stream_id == 1)
    assert f is not None and "END_STREAM" in f.flags
    raw.close()


def test_data_frames_at_most_16k_and_last_ends(srv):
    raw = Raw(srv.port)
    raw.send(raw.headers(1, raw.get_fields("/t.txt") +
                         [("accept-encoding", "identity")]))
    got = 0
    last = None
    while got < len(TEXT):
        f = raw.until(lambda f: isinstance(f, hf.DataFrame)
                      and f.stream_id == 1 and f is not last)
        assert f is not None
        assert len(f.data) <= 16384
        got += len(f.data)
        last = f
        raw.frames.remove(f)
        # keep the windows open
        raw.send(hf.WindowUpdateFrame(0, window_increment=len(f.data)),
                 hf.WindowUpdateFrame(1, window_increment=len(f.data)))
    assert got == len(TEXT) and "END_STREAM" in last.flags
    raw.close()


@pytest.mark.parametrize("path,headers", [
    ("/index.html", ()),
    ("/missing", ()),
    ("/auto/", ()),
    ("/pre/p.txt", (("Accept-Encoding", "gzip"),)),
    ("/t.txt", (("Accept-Encoding", "gzip"),)),
    ("/t.txt", (("Range", "bytes=0-9"),)),
    ("/t.txt", (("Range", "bytes=0-9,20-29"),)),
    ("/t.txt", (("Range", "bytes=999999-"),)),
    ("/redir", ()),
    ("/deny", ()),
    ("/hdr", ()),
    ("/errpage", ()),
])
def test_same_answer_as_http11(srv, path, headers):
    st = same(srv, path, headers)
    if path == "/hdr":
        assert st.header("x-one") == "1"
        assert st.header("keep-alive") is None
        assert st.header("upgrade") is None


def test_conditional_304_and_412(srv):
    st = h2get(srv, "/index.html")
    etag = st.header("etag")
    b = h2get(srv, "/index.html", [("if-none-match", etag)])
    assert b.status == 304 and b.body == b""
    assert b.header("content-length") is None
    c = h2get(srv, "/index.html", [("if-match", '"nope"')])
    assert c.status == 412


def test_gzip_over_h2(srv):
    st = h2get(srv, "/t.txt", [("accept-encoding", "gzip")])
    assert st.status == 200 and st.header("content-encoding") == "gzip"
    assert gzip.decompress(st.body) == TEXT


def test_limit_req_over_h2(srv):
    a = h2get(srv, "/limited")
    b = h2get(srv, "/limited")
    assert a.status == 200 and b.status in (429, 503)


def test_many_streams_on_one_connection(srv):
    c = H2(srv.port)
    ids = [c.request("/index.html") for _ in range(50)]
    for sid in ids:
        st = c.wait(sid)
        assert st.status == 200 and st.body == b"<p>hello</p>\n"
    c.close()


def test_proxy_get_and_streamed_upload(eddy):
    seen = []

    def handler(req, conn):
        seen.append(req)
        return response(200, b"got %d %s\n" % (len(req.body),
                                                req.method.encode()))

    with Backend(handler) as b:
        e = start(eddy, b.port)
        body = os.urandom(200 * 1024)
        c = H2(e.port)
        st = c.wait(c.request("/up/x?a=1", method="POST", body=body,
                              headers=[("content-length", str(len(body)))]),
                    timeout=10)
        assert st.status == 200 and st.body == b"got %d POST\n" % len(body)
        assert seen[-1].body == body
        assert seen[-1].header("Content-Length") == str(len(body))
        assert seen[-1].target == "/up/x?a=1"
        assert seen[-1].header("Host") == "localhost"
        # No content-length: chunked upstream.
        sid = c.request("/up/y", method="POST", body=b"abc" * 1000)
        st = c.wait(sid)
        assert st.status == 200 and st.body == b"got 3000 POST\n"
        assert seen[-1].header("Transfer-Encoding") == "chunked"
        assert seen[-1].body == b"abc" * 1000
        c.close()


def test_proxy_chunked_response_and_cut_body(eddy):
    def handler(req, conn):
        if req.path == "/up/cut":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                         b"only some")
            # The head goes out before the upstream fails mid-body.
            time.sleep(0.3)
            return "close"
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunked(b"one ", b"two"))

    with Backend(handler) as b:
        e = start(eddy, b.port)
        st = h2get(e, "/up/ch")
        assert st.status == 200 and st.body == b"one two" and st.ended
        st = h2get(e, "/up/cut")
        # Never END_STREAM on a body that ended early.
        assert st.reset == 2 and not st.ended


def test_proxy_bodyless_post_sends_content_length_zero(eddy):
    seen = []

    def handler(req, conn):
        seen.append(req)
        return response(200, b"ok\n")

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        st = c.get("/up/p", method="POST")
        assert st.status == 200
        assert seen[-1].header("Content-Length") == "0"
        assert seen[-1].header("Transfer-Encoding") is None
        st = c.get("/up/g")
        assert st.status == 200
        assert seen[-1].header("Content-Length") is None
        c.close()


def worker_rss(e):
    pid = e.worker_pids()[0]
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_large_upload_bounded_memory(eddy):
    """A large upload to a backend: eddy holds at most the connection
    window and a few buffers (flow control end to end), never the body."""
    import threading

    from test_dump import skip_sanitizers
    skip_sanitizers()

    total = 10 * 1024 * 1024
    got = []

    def handler(req, conn):
        return response(200, b"%d\n" % len(req.body))

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port, timeout=20)
        sid = c.request("/up/big", method="POST", end=False,
                        headers=[("content-length", str(total))])
        base = worker_rss(e)
        peak = [base]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], worker_rss(e))
                time.sleep(0.05)

        t = threading.Thread(target=watch)
        t.start()
        try:
            chunk = os.urandom(1024 * 1024)
            for i in range(total // len(chunk)):
                c.send_data(sid, chunk, end=(i == total // len(chunk) - 1))
            st = c.wait(sid, 30)
        finally:
            stop.set()
            t.join()
        c.close()
        assert st.status == 200 and st.body == b"%d\n" % total
        # connection_window_size (1m) and a few buffers, not the body.
        assert peak[0] - base < 4 * 1024 * 1024, (base, peak[0])


def test_request_trailers_reach_chunked_upstream(eddy):
    seen = []

    def handler(req, conn):
        seen.append(req)
        return response(200, b"ok\n")

    with Backend(handler) as b:
        e = start(eddy, b.port)
        c = H2(e.port)
        sid = c.request("/up/t", method="POST", end=False)
        c.send_data(sid, b"abc")
        c.conn.send_headers(sid, [("x-sum", "42"), ("host", "evil")],
                            end_stream=True)
        c.flush()
        st = c.wait(sid)
        assert st.status == 200
        raw = seen[-1].raw_body
        assert seen[-1].body == b"abc"
        assert raw.endswith(b"0\r\nx-sum: 42\r\n\r\n"), raw
        assert b"evil" not in raw
        c.close()


def test_auth_request_subrequest_over_h2(eddy):
    """A subrequest (auth_request) of an HTTP/2 stream: its answer decides,
    the stream gets the protected location's response."""
    def auth(req, conn):
        if req.header("Authorization") == "yes":
            return response(200, b"", headers=[("X-User", "ann")])
        return response(401, b"")

    with Backend(auth) as a:
        e = eddy("""
workers: 1
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    auth_request: {uri: /_auth, copy_headers: [X-User]}
    locations:
      /_auth:
        internal: true
        proxy: {pass: "http://127.0.0.1:%d"}
      /:
        return: {status: 200, body: "user=$http_x_user status=$auth_status\\n"}
""" % a.port)
        c = H2(e.port)
        st = c.get("/", headers=[("authorization", "yes")])
        assert st.status == 200 and st.body == b"user=ann status=200\n"
        st = c.get("/")
        assert st.status == 401
        c.close()


def test_response_field_names_lower_case(srv):
    """The fields of a static response and of a redirect go out with
    lower-case names (RFC 9113 8.2.2), the common ones and others alike,
    with their values."""
    st = h2get(srv, "/index.html")
    names = [n for n, _ in st.headers]
    assert names == [":status", "server", "date", "content-type",
                     "content-length", "etag", "last-modified",
                     "accept-ranges"], st.headers
    assert st.header("accept-ranges") == "bytes"
    assert st.header(":status") == "200"
    r = h2get(srv, "/redir")
    assert r.header(":status") == "301"
    assert r.header("location").endswith("/target")
    h = h2get(srv, "/hdr")
    assert h.header("x-one") == "1"
    assert all(n == n.lower() for n, _ in h.headers + r.headers)
