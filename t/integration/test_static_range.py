"""Range requests on static files (http.md "Static files"): single,
suffix, open and multiple ranges checked against the file's bytes, for a
small file served from memory and a large one sent with sendfile; 416,
invalid headers, If-Range, the cap on ranges and overlaps, and byte-exact
bodies of large files."""

import email.parser
import email.policy
import hashlib
import os
import re

import pytest

from conftest import split_response

CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        static: {}
      /noranges/:
        static: {ranges: false}
"""

SMALL = bytes(range(256)) * 8           # 2 KiB: held in memory
LARGE_SIZE = 3 * 1024 * 1024 + 123      # sendfile


def get(e, path, headers=None, method="GET"):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: localhost",
             "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    raw, closed = e.raw_ex(("\r\n".join(lines) + "\r\n\r\n").encode(),
                           timeout=10)
    assert closed
    return split_response(raw)


def one(headers, name):
    values = headers.get(name.lower(), [])
    assert len(values) == 1, "%s: %r" % (name, values)
    return values[0]


@pytest.fixture(scope="module")
def large():
    # Deterministic, incompressible-looking bytes.
    out, seed = [], b"eddy"
    while sum(map(len, out)) < LARGE_SIZE:
        seed = hashlib.sha256(seed).digest()
        out.append(seed * 32)
    return b"".join(out)[:LARGE_SIZE]


@pytest.fixture
def srv(eddy, large):
    e = eddy(CONFIG, start=False)
    e.write_file("html/small.bin", SMALL)
    e.write_file("html/large.bin", large)
    e.write_file("html/one.txt", "x")
    e.write_file("html/empty.txt", b"")
    e.write_file("html/noranges/f.bin", SMALL)
    return e.start()


def files(large):
    return [("/small.bin", SMALL), ("/large.bin", large)]


def test_large_file_byte_exact(srv, large):
    status, h, body = get(srv, "/large.bin")
    assert status == 200
    assert one(h, "content-length") == str(len(large))
    assert one(h, "content-type") == "application/octet-stream"
    assert body == large
    # The same through http.client, twice on one connection.
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        for _ in range(2):
            c.request("GET", "/large.bin")
            r = c.getresponse()
            assert r.status == 200 and r.read() == large
    finally:
        c.close()


def test_files_around_the_memory_limit(srv):
    """Files just below, at and above the size kept in memory."""
    for size in (16383, 16384, 16385, 65536, 1 << 20):
        data = os.urandom(size)
        srv.write_file("html/s%d.bin" % size, data)
        status, h, body = get(srv, "/s%d.bin" % size)
        assert status == 200 and body == data, size
        status, h, body = get(srv, "/s%d.bin" % size,
                              {"Range": "bytes=100-"})
        assert status == 206 and body == data[100:], size


@pytest.mark.parametrize("spec,start,end", [
    ("0-0", 0, 1),
    ("0-99", 0, 100),
    ("10-19", 10, 20),
    ("1000-", 1000, None),
    ("-500", -500, None),
    ("-1", -1, None),
    ("5-99999999999", 5, None),
    ("0-", 0, None),
])
def test_single_range(srv, large, spec, start, end):
    for path, data in files(large):
        want = data[start:end] if end is not None else data[start:]
        status, h, body = get(srv, path, {"Range": "bytes=" + spec})
        assert status == 206, (path, spec)
        assert body == want, (path, spec)
        first = start if start >= 0 else len(data) + start
        assert one(h, "content-range") == "bytes %d-%d/%d" % (
            first, first + len(want) - 1, len(data))
        assert one(h, "content-length") == str(len(want))
        assert one(h, "content-type") == "application/octet-stream"
        assert "etag" in h and one(h, "accept-ranges") == "bytes"


def parse_multipart(h, body):
    ctype = one(h, "content-type")
    m = re.match(r"multipart/byteranges; boundary=(\S+)$", ctype)
    assert m, ctype
    boundary = m.group(1).encode()
    parts = []
    chunks = body.split(b"\r\n--" + boundary)
    assert chunks[0] == b"", chunks[0][:100]
    assert chunks[-1] == b"--\r\n"
    for c in chunks[1:-1]:
        assert c.startswith(b"\r\n")
        head, _, data = c[2:].partition(b"\r\n\r\n")
        fields = dict(ln.split(": ", 1)
                      for ln in head.decode().split("\r\n"))
        parts.append((fields, data))
    return parts


@pytest.mark.parametrize("spec,want", [
    ("0-9,20-29", [(0, 10), (20, 30)]),
    ("20-29, 0-9", [(20, 30), (0, 10)]),
    ("0-0,-1", [(0, 1), (-1, None)]),
    ("0-9,10-19,100-", [(0, 10), (10, 20), (100, None)]),
    ("0-1,999999999-", [(0, 2)]),           # the unsatisfiable part dropped
])
def test_multiple_ranges(srv, large, spec, want):
    for path, data in files(large):
        status, h, body = get(srv, path, {"Range": "bytes=" + spec})
        assert status == 206, (path, spec)
        assert one(h, "content-length") == str(len(body))
        if len(want) == 1:
            s, e = want[0]
            assert body == data[s:e]
            continue
        parts = parse_multipart(h, body)
        assert len(parts) == len(want)
        for (fields, got), (s, e) in zip(parts, want):
            expect = data[s:e] if e is not None else data[s:]
            assert got == expect, (path, spec, s, e)
            first = s if s >= 0 else len(data) + s
            assert fields["Content-Type"] == "application/octet-stream"
            assert fields["Content-Range"] == "bytes %d-%d/%d" % (
                first, first + len(expect) - 1, len(data))


def test_multipart_parses_as_mime(srv, large):
    """A standard MIME parser agrees with the framing."""
    status, h, body = get(srv, "/large.bin",
                          {"Range": "bytes=0-99,2000000-2000099,-50"})
    assert status == 206
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + one(h, "content-type").encode() + b"\r\n\r\n"
        + body)
    parts = [p.get_payload(decode=True) for p in msg.iter_parts()]
    assert parts == [large[:100], large[2000000:2000100], large[-50:]]


@pytest.mark.parametrize("spec", ["1000000000-", "-0", "999999999-9999999999",
                                  "1000000000-,2000000000-"])
def test_unsatisfiable_416(srv, large, spec):
    for path, data in files(large):
        status, h, body = get(srv, path, {"Range": "bytes=" + spec})
        assert status == 416, (path, spec)
        assert one(h, "content-range") == "bytes */%d" % len(data)
        assert b"416" in body


def test_empty_file_ranges(srv):
    status, h, body = get(srv, "/empty.txt", {"Range": "bytes=0-"})
    assert status == 416 and one(h, "content-range") == "bytes */0"
    status, h, body = get(srv, "/empty.txt", {"Range": "bytes=-10"})
    assert status == 200 and body == b""


@pytest.mark.parametrize("value", [
    "bytes=abc", "bytes=5-1", "bytes=", "bytes", "items=0-1", "bytes=1-2;x",
    "bytes=0-1 2-3", "bytes = 0-1", "bytes=--5", "bytes=0x10-20",
    # amplification: overlapping ranges get the file once
    "bytes=0-,0-", "bytes=0-99,50-149", "bytes=-100,0-",
    # more than 16 range-specs
    "bytes=" + ",".join("%d-%d" % (i * 10, i * 10 + 1) for i in range(17)),
])
def test_invalid_or_refused_ranges_give_200(srv, large, value):
    for path, data in files(large):
        status, h, body = get(srv, path, {"Range": value})
        assert status == 200, (path, value)
        assert body == data
        assert "content-range" not in h


def test_sixteen_ranges_are_served(srv, large):
    spec = ",".join("%d-%d" % (i * 10, i * 10 + 1) for i in range(16))
    status, h, body = get(srv, "/large.bin", {"Range": "bytes=" + spec})
    assert status == 206
    parts = parse_multipart(h, body)
    assert [p[1] for p in parts] == [large[i * 10:i * 10 + 2]
                                     for i in range(16)]


def test_if_range(srv, large):
    status, h, _ = get(srv, "/large.bin", method="HEAD")
    etag, lm = one(h, "etag"), one(h, "last-modified")
    for validator in (etag, lm):
        status, h, body = get(srv, "/large.bin",
                              {"Range": "bytes=0-9", "If-Range": validator})
        assert status == 206 and body == large[:10], validator
    for validator in ('"other"', "W/" + etag,
                      "Mon, 01 Jan 2001 00:00:00 GMT", "garbage"):
        status, h, body = get(srv, "/large.bin",
                              {"Range": "bytes=0-9", "If-Range": validator})
        assert status == 200 and body == large, validator


def test_range_with_preconditions(srv, large):
    status, h, _ = get(srv, "/small.bin", method="HEAD")
    etag = one(h, "etag")
    # Not modified wins over the range; a failed If-Match is 412.
    assert get(srv, "/small.bin", {"Range": "bytes=0-1",
                                   "If-None-Match": etag})[0] == 304
    assert get(srv, "/small.bin", {"Range": "bytes=0-1",
                                   "If-Match": '"x"'})[0] == 412
    status, h, body = get(srv, "/small.bin", {"Range": "bytes=0-1",
                                              "If-Match": etag})
    assert status == 206 and body == SMALL[:2]


def test_head_ignores_range(srv):
    status, h, body = get(srv, "/small.bin", {"Range": "bytes=0-1"},
                          method="HEAD")
    assert status == 200 and body == b""
    assert one(h, "content-length") == str(len(SMALL))


def test_ranges_off(srv):
    status, h, body = get(srv, "/noranges/f.bin", {"Range": "bytes=0-1"})
    assert status == 200 and body == SMALL
    assert "accept-ranges" not in h


def test_range_one_byte_file(srv):
    status, h, body = get(srv, "/one.txt", {"Range": "bytes=0-0"})
    assert status == 206 and body == b"x"
    assert one(h, "content-range") == "bytes 0-0/1"
    status, h, body = get(srv, "/one.txt", {"Range": "bytes=1-"})
    assert status == 416


@pytest.mark.skipif(__import__("shutil").which("openssl") is None,
                    reason="the openssl command is needed")
def test_large_file_and_ranges_over_tls(eddy, large, tmp_path):
    """Over TLS the stream cannot sendfile: it reads the file itself."""
    import ssl
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=localhost", "-days", "2",
                    "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(tmp_path / "c.pem")],
                   check=True, capture_output=True, timeout=60)
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            tls: {certificate: %s, key: %s}
    """ % (tmp_path / "c.pem", tmp_path / "k.pem"), start=False)
    e.write_file("html/large.bin", large)
    e.write_file("html/small.bin", SMALL)
    e.start()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", e.port, context=ctx,
                                    timeout=20)
    try:
        for path, headers, status, want in (
                ("/large.bin", {}, 200, large),
                ("/large.bin", {"Range": "bytes=1000000-1000099"}, 206,
                 large[1000000:1000100]),
                ("/small.bin", {}, 200, SMALL),
                ("/large.bin", {}, 200, large)):
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            assert r.status == status and r.read() == want, path
        c.request("GET", "/large.bin", headers={"Range": "bytes=0-0,-1"})
        r = c.getresponse()
        body = r.read()
        assert r.status == 206
        parts = parse_multipart({"content-type": [r.getheader(
            "Content-Type")]}, body)
        assert [p[1] for p in parts] == [large[:1], large[-1:]]
    finally:
        c.close()
