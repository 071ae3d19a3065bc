"""The gzip module (config.md `gzip`): on-the-fly compression of static
files, proxied and `return` bodies, checked by decompressing the real
bytes; what is left alone (small, other types, not accepted, already
encoded, errors), HEAD, HTTP/1.0, Range, validators, Vary, keep-alive,
bounded memory on a large file and configuration errors."""

import base64
import gzip
import hashlib
import os
import re
import socket
import time
import zlib

import pytest

from conftest import format_config, free_port, position, run_eddy
from httputil import Client, decode_chunked
from proxy_backend import Backend, chunked, response

TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i
                for i in range(2000))            # ~110 KiB, compressible

CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    root: html
    gzip: {enabled: true, types: [text/html, text/plain, text/css, application/json]}
    locations:
      /:
        static: {}
      /pre/:
        static: {precompressed: [gzip]}
      /off/:
        static: {}
        gzip: {enabled: false}
      = /ret:
        return: {status: 200, body: "@LONG@", content_type: text/plain}
      = /short:
        return: {status: 200, body: "short\n", content_type: text/plain}
      = /missing-ret:
        return: 404
"""

LONG = "eddy " * 100
MID = TEXT[:8000]                                # under 16 KiB: cached


def start(eddy, extra_files=True):
    e = eddy(CONFIG.replace("@LONG@", LONG))
    if extra_files:
        e.write_file("html/t.html", TEXT)
        e.write_file("html/t.txt", TEXT)
        e.write_file("html/small.html", b"<p>tiny</p>\n")
        e.write_file("html/t.bin", TEXT)
        e.write_file("html/off/t.html", TEXT)
        e.write_file("html/mid.css", MID)
    return e


def req(path, ae="gzip", method="GET", version="1.1", extra=()):
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: localhost"]
    if ae is not None:
        lines.append("Accept-Encoding: %s" % ae)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def get(e, path, ae="gzip", method="GET", extra=()):
    with Client(e.port, timeout=10) as c:
        c.send(req(path, ae, method, extra=extra))
        return c.response(head_request=method == "HEAD")


def assert_gzip(r, expected):
    assert r.status == 200, r
    assert r.header("Content-Encoding") == "gzip", r
    assert not r.has("Content-Length"), r
    assert r.header("Transfer-Encoding") == "chunked", r
    assert "accept-encoding" in r.tokens("Vary"), r
    # A real gzip member (magic, deflate), decompressing to the bytes.
    assert r.body[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(r.body) == expected


def assert_plain(r, expected):
    assert r.status == 200, r
    assert not r.has("Content-Encoding"), r
    assert r.header("Content-Length") == str(len(expected)), r
    assert r.body == expected


def test_static_file_compressed(eddy):
    e = start(eddy)
    r = get(e, "/t.html")
    assert_gzip(r, TEXT)
    assert len(r.body) < len(TEXT) // 5
    assert r.headers_all("Vary") == ["Accept-Encoding"]
    assert not r.has("Accept-Ranges")
    r = get(e, "/t.txt", ae="deflate, gzip;q=0.5")
    assert_gzip(r, TEXT)
    assert r.header("Content-Type").startswith("text/plain")
    # A small file, held in memory by the open-file cache after the
    # first request: the same bytes either way.
    for _ in range(3):
        assert_gzip(get(e, "/mid.css"), MID)


def test_etag_weakened_and_revalidates(eddy):
    e = start(eddy)
    plain = get(e, "/t.html", ae=None)
    strong = plain.header("ETag")
    assert strong and strong.startswith('"')
    r = get(e, "/t.html")
    assert r.header("ETag") == "W/" + strong
    # The weak tag still revalidates (weak comparison for If-None-Match).
    r = get(e, "/t.html", extra=["If-None-Match: W/" + strong])
    assert r.status == 304 and r.body == b""


def test_not_accepted(eddy):
    e = start(eddy)
    for ae in (None, "gzip;q=0", "identity", "br", "deflate, *;q=0",
               "gzip;q=abc"):
        r = get(e, "/t.html", ae=ae)
        assert_plain(r, TEXT)
        # The type is compressible: caches must know the answer depends
        # on Accept-Encoding.
        assert r.headers_all("Vary") == ["Accept-Encoding"], (ae, r)
        assert r.header("Accept-Ranges") == "bytes"
    for ae in ("*", "GZIP", "x-gzip", "br;q=1, gzip;q=0.001"):
        assert_gzip(get(e, "/t.html", ae=ae), TEXT)


def test_small_and_other_types_untouched(eddy):
    e = start(eddy)
    r = get(e, "/small.html")
    assert_plain(r, b"<p>tiny</p>\n")
    assert not r.has("Vary")
    r = get(e, "/t.bin")                     # application/octet-stream
    assert_plain(r, TEXT)
    assert not r.has("Vary")
    r = get(e, "/off/t.html")                # gzip: {enabled: false}
    assert_plain(r, TEXT)
    assert not r.has("Vary")


def test_head_same_headers_no_body(eddy):
    e = start(eddy)
    g = get(e, "/t.html")
    with Client(e.port, timeout=10) as c:
        c.send(req("/t.html", method="HEAD"))
        h = c.response(head_request=True)
        assert h.status == 200 and h.body == b""
        assert h.header("Content-Encoding") == "gzip"
        assert not h.has("Content-Length")
        assert h.header("Transfer-Encoding") == "chunked"
        assert h.header("ETag") == g.header("ETag")
        assert h.header("Vary") == "Accept-Encoding"
        # Nothing follows the head: the next answer on the connection
        # starts right away.
        c.send(req("/small.html"))
        assert_plain(c.response(), b"<p>tiny</p>\n")


def test_http10_close_delimited(eddy):
    e = start(eddy)
    with Client(e.port, timeout=10) as c:
        c.send(req("/t.html", version="1.0"))
        data, closed = c.read_until_close()
    assert closed
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert re.search(br"(?im)^content-encoding: gzip\r?$", head)
    assert not re.search(br"(?im)^(content-length|transfer-encoding):", head)
    assert re.search(br"(?im)^connection: close\r?$", head)
    assert gzip.decompress(body) == TEXT


@pytest.mark.parametrize("version,extra", [
    ("1.1", ["Connection: close"]), ("1.0", []),
], ids=["connection-close", "http10"])
def test_regress_large_file_whole_when_closing(eddy, version, extra):
    """A compressed file larger than the client's queue, on a connection
    that closes after it: the whole body, then the close. The close used
    to come when the queue first ran dry (the file reader wrote more from
    on_drain, then the stale "flushed" news closed the connection),
    cutting the body's last tens of KiB."""
    e = start(eddy, extra_files=False)
    big = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() + b"\n"
                   for i in range(40000))          # 2.6 MB of hex text
    e.write_file("html/big.txt", big)
    for _ in range(3):
        with Client(e.port, timeout=10) as c:
            c.send(req("/big.txt", version=version, extra=extra))
            data, closed = c.read_until_close(10)
        assert closed
        head, _, body = data.partition(b"\r\n\r\n")
        assert re.search(br"(?im)^content-encoding: gzip\r?$", head), head
        if version == "1.1":
            assert body.endswith(b"\r\n0\r\n\r\n"), body[-40:]
            body = decode_chunked(body, 0)[0]
        assert gzip.decompress(body) == big


def test_range_ignored_when_compressing(eddy):
    e = start(eddy)
    r = get(e, "/t.html", extra=["Range: bytes=0-99"])
    assert_gzip(r, TEXT)
    assert not r.has("Content-Range")
    # Without gzip the range is honoured as before.
    r = get(e, "/t.html", ae=None, extra=["Range: bytes=0-99"])
    assert r.status == 206 and r.body == TEXT[:100]
    assert r.header("Content-Range") == "bytes 0-99/%d" % len(TEXT)


def test_keepalive_after_compressed_responses(eddy):
    e = start(eddy)
    with Client(e.port, timeout=10) as c:
        for path in ("/t.html", "/t.txt", "/ret", "/t.html"):
            c.send(req(path))
            r = c.response()
            assert r.header("Content-Encoding") == "gzip", (path, r)
            assert not r.closes
        c.send(req("/small.html"))
        assert_plain(c.response(), b"<p>tiny</p>\n")
        # Pipelined: compressed answers in order, each complete.
        c.send(req("/t.html") + req("/ret") + req("/small.html"))
        a, b, d = c.responses(3)
        assert gzip.decompress(a.body) == TEXT
        assert gzip.decompress(b.body) == LONG.encode()
        assert d.body == b"<p>tiny</p>\n"


def test_precompressed_served_as_is(eddy):
    e = start(eddy)
    pre = gzip.compress(TEXT, 9, mtime=0)
    e.write_file("html/pre/t.html", TEXT)
    e.write_file("html/pre/t.html.gz", pre)
    r = get(e, "/pre/t.html")
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert r.header("Content-Length") == str(len(pre))
    assert r.body == pre                     # not compressed twice
    assert r.headers_all("Vary") == ["Accept-Encoding"]
    # Without the .gz variant, compressed on the fly.
    e.write_file("html/pre/u.html", TEXT)
    r = get(e, "/pre/u.html")
    assert_gzip(r, TEXT)
    assert r.headers_all("Vary") == ["Accept-Encoding"]


def test_return_body(eddy):
    e = start(eddy)
    assert_gzip(get(e, "/ret"), LONG.encode())
    r = get(e, "/short")                     # under min_length
    assert_plain(r, b"short\n")
    r = get(e, "/ret", ae=None)
    assert_plain(r, LONG.encode())


def test_error_responses_not_compressed(eddy):
    e = start(eddy)
    for path in ("/missing.html", "/missing-ret"):
        r = get(e, path)
        assert r.status == 404
        assert not r.has("Content-Encoding")
        assert b"404" in r.body


def test_proxied_response(eddy):
    body = TEXT[:50000]

    def handler(req, conn):
        if req.path == "/plain":
            return response(200, body, [("Content-Type", "text/html"),
                                        ("ETag", '"abc"'),
                                        ("Vary", "Cookie")])
        if req.path == "/chunked":
            head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            return head + chunked(body[:1000], body[1000:30000],
                                  body[30000:])
        if req.path == "/encoded":
            return response(200, gzip.compress(body),
                            [("Content-Type", "text/html"),
                             ("Content-Encoding", "gzip")])
        if req.path == "/br":
            return response(200, b"not really brotli" * 50,
                            [("Content-Type", "text/html"),
                             ("Content-Encoding", "br")])
        if req.path == "/notransform":
            return response(200, body, [("Content-Type", "text/html"),
                                        ("Cache-Control", "no-transform")])
        return response(404, b"nope" * 100, [("Content-Type", "text/html")])

    with Backend(handler) as b:
        e = eddy("""
            workers: 1
            error_log: logs/error.log
            servers:
              - listen: 127.0.0.1:{port}
                gzip: {enabled: true, min_length: 100}
                locations:
                  /:
                    proxy: {pass: "http://127.0.0.1:%d"}
            """ % b.port)
        r = get(e, "/plain")
        assert_gzip(r, body)
        assert r.header("ETag") == 'W/"abc"'
        assert r.headers_all("Vary") == ["Cookie", "Accept-Encoding"]
        assert_gzip(get(e, "/chunked"), body)
        # Already encoded upstream: left exactly as it came.
        r = get(e, "/encoded")
        assert r.header("Content-Encoding") == "gzip"
        assert gzip.decompress(r.body) == body
        assert r.header("Content-Length") == str(len(r.body))
        r = get(e, "/br")
        assert r.header("Content-Encoding") == "br"
        assert r.body == b"not really brotli" * 50
        r = get(e, "/notransform")
        assert_plain(r, body)
        r = get(e, "/other")
        assert r.status == 404 and r.body == b"nope" * 100
        assert not r.has("Content-Encoding")
        # HEAD through the proxy: the GET's head, no body.
        with Client(e.port, timeout=10) as c:
            c.send(req("/plain", method="HEAD"))
            h = c.response(head_request=True)
            assert h.header("Content-Encoding") == "gzip"
            assert not h.has("Content-Length")
            c.send(req("/plain"))
            assert_gzip(c.response(), body)


def test_inheritance_nearest_level_wins(eddy):
    e = eddy("""
        workers: 1
        error_log: logs/error.log
        gzip: {enabled: true, min_length: 10, types: [text/plain]}
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            gzip: {types: ["*"]}
            locations:
              /:
                static: {}
              /sub/:
                static: {}
                gzip: {types: ["text/*"]}
              /big/:
                static: {}
                gzip: {min_length: 1m}
              /bare/:
                static: {}
                gzip: false
        """)
    e.write_file("html/a.bin", TEXT)
    e.write_file("html/big/a.bin", TEXT)
    e.write_file("html/bare/a.bin", TEXT)
    assert_gzip(get(e, "/a.bin"), TEXT)          # types "*" from server
    assert_plain(get(e, "/big/a.bin"), TEXT)     # min_length 1m here
    assert_plain(get(e, "/bare/a.bin"), TEXT)    # gzip: false
    e.write_file("html/sub/a.bin", TEXT)
    e.write_file("html/sub/a.css", TEXT)
    assert_plain(get(e, "/sub/a.bin"), TEXT)     # not text/*
    assert_gzip(get(e, "/sub/a.css"), TEXT)


def worker_rss_kib(e, pid):
    """The RSS of the one worker, which must still be pid (a crash and a
    respawn would give a small RSS of a new process)."""
    assert e.worker_pids() == [pid], "the worker crashed"
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_large_file_bounded_memory(eddy):
    e = start(eddy, extra_files=False)
    # 24 MiB of base64 text: compresses to ~75%, so a filter that did
    # not pause would queue ~18 MiB for a client that does not read.
    rnd = hashlib.sha256(b"eddy").digest()
    blocks, h = [], rnd
    for _ in range(24 * 1024 * 1024 // (76 * 1024) + 1):
        h = hashlib.sha256(h).digest()
        blocks.append(base64.encodebytes(h * 1456)[:76 * 1024])
    big = b"".join(blocks)[:24 * 1024 * 1024]
    e.write_file("html/big.txt", big)
    get(e, "/small.html")                        # warm up (404 is fine)
    (worker,) = e.wait_workers(1)
    before = worker_rss_kib(e, worker)
    s = socket.create_connection(("127.0.0.1", e.port), timeout=10)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(req("/big.txt"))
        time.sleep(1.0)                          # a client that stalls
        stalled = worker_rss_kib(e, worker)
        assert stalled - before < 8 * 1024, (before, stalled)
        data = b""
        s.settimeout(20)
        while not data.endswith(b"\r\n0\r\n\r\n"):
            b = s.recv(1 << 20)
            assert b, "closed early"
            data += b
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    # Dechunk, then decompress.
    body, pos = b"", 0
    while True:
        eol = rest.index(b"\r\n", pos)
        n = int(rest[pos:eol], 16)
        if n == 0:
            break
        body += rest[eol + 2:eol + 2 + n]
        pos = eol + 4 + n
    assert zlib.decompress(body, 31) == big
    assert e.worker_pids() == [worker], "the worker crashed"


def test_client_gone_mid_response(eddy):
    e = start(eddy, extra_files=False)
    e.write_file("html/big.txt", os.urandom(3 * 1024 * 1024).hex().encode())
    workers = e.wait_workers(1)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        s.sendall(req("/big.txt"))
        s.recv(1000)
        s.close()
    time.sleep(0.3)
    # The worker is fine and serves the next client completely.
    r = get(e, "/big.txt")
    assert r.header("Content-Encoding") == "gzip"
    assert len(gzip.decompress(r.body)) == 6 * 1024 * 1024
    # The same worker: a crash would have been hidden by its respawn.
    assert e.running() and e.worker_pids() == workers
    assert "exited with code" not in e.all_logs()
    assert "killed by signal" not in e.all_logs()


# -t: configuration errors with file:line:col


def check_t(prefix, text):
    text = format_config(text, [free_port()], prefix)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)
    return rc, out + err, text


def assert_t_error(prefix, text, needle, *patterns, nth=1):
    rc, out, text = check_t(prefix, text)
    assert rc != 0, out
    line, col = position(text, needle, nth)
    want = "eddy.yaml:%d:%d: " % (line, col)
    for ln in out.splitlines():
        if want in ln and all(re.search(p, ln) for p in patterns):
            return ln
    raise AssertionError("no error at %s matching %s in:\n%s"
                         % (want, patterns, out))


BAD = """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: 204
        gzip: %s
"""


def test_t_level_out_of_range(prefix):
    assert_t_error(prefix, BAD % "{enabled: true, level: 10}", "10}",
                   r"level", r"1 to 9")
    assert_t_error(prefix, BAD % "{level: 0}", "0}", r"level", r"1 to 9")


def test_t_bad_min_length(prefix):
    assert_t_error(prefix, BAD % "{min_length: lots}", "lots",
                   r"min_length", r"size")


def test_t_bad_types(prefix):
    assert_t_error(prefix, BAD % "{types: [text/html, html, \"a/b c\"]}",
                   "html,", r'media type "html"', r"type/subtype",
                   nth=2)
    assert_t_error(prefix, BAD % "{types: [text/html, html, \"a/b c\"]}",
                   '"a/b c"', r'media type "a/b c"')
    assert_t_error(prefix, BAD % "{types: text/html}", "text/html",
                   r"types", r"list")


def test_t_unknown_key_and_wrong_type(prefix):
    assert_t_error(prefix, BAD % "{enable: true}", "enable",
                   r'unknown key "enable"', r'did you mean "enabled"')
    assert_t_error(prefix, BAD % "maybe", "maybe", r"gzip",
                   r"true, false or a mapping")
    assert_t_error(prefix, BAD % "{enabled: 3}", "3}", r"enabled")


def test_t_good(prefix):
    rc, out, _ = check_t(prefix, """
        gzip: {enabled: true, level: 9, min_length: 1k, types: ["*"]}
        servers:
          - listen: 127.0.0.1:{port}
            gzip: {level: 1}
            locations:
              /:
                return: 204
                gzip: false
        """)
    assert rc == 0, out
