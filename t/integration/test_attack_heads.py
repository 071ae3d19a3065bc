"""Hostile request heads (spec/http.md limits, spec/http2.md Requests):
what a head within max_header_size costs the worker, on HTTP/2 where
each cookie crumb and trailer field comes in a callback of its own."""

import pytest

from h2util import H2, PROTOCOL_ERROR, Raw, hf
from proxy_backend import Backend, echo_handler, response

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    max_header_size: 64k
    access_log: {path: logs/access.log, format: "$status $request"}
    locations:
      /:
        return: {status: 200, body: "ok\n"}
      /up/:
        proxy: {pass: "http://127.0.0.1:%d"}
"""


def peak_kb(e):
    (pid,) = e.worker_pids()
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def block_frames(sid, block, end_stream):
    """A header block in HEADERS and CONTINUATION frames of 16000."""
    frames = []
    while True:
        chunk, block = block[:16000], block[16000:]
        f = hf.ContinuationFrame(sid) if frames else hf.HeadersFrame(sid)
        f.data = chunk
        f.flags = set()
        if end_stream and not frames:
            f.flags.add("END_STREAM")
        if not block:
            f.flags.add("END_HEADERS")
        frames.append(f)
        if not block:
            return frames


def ends(sid):
    def pred(f):
        return getattr(f, "stream_id", 0) == sid and (
            isinstance(f, hf.RstStreamFrame) or "END_STREAM" in f.flags)
    return pred


def repeated(r, name, value, n):
    """The field once with incremental indexing (dynamic index 62), then
    n - 1 times as that index: one byte each."""
    return r.enc.encode([(name, value)]) + bytes([0x80 | 62]) * (n - 1)


def test_regress_h2_many_cookie_crumbs_cost_linear_memory(eddy):
    """21000 crumbs of "a" (a 21 KB header block, 63 KB joined, within
    max_header_size: 64k): the joined cookie grew a copy per crumb,
    some 650 MB at the peak; now a few hundred KB."""
    e = eddy(CONFIG % 1)
    before = peak_kb(e)
    r = Raw(e.port)
    block = r.enc.encode([(":method", "GET"), (":scheme", "http"),
                          (":path", "/"), (":authority", "a.test")])
    block += repeated(r, "cookie", "a", 21000)
    r.send(*block_frames(1, block, True))
    assert r.until(ends(1), timeout=20)
    mine = [f for f in r.frames if getattr(f, "stream_id", 0) == 1]
    r.close()
    assert any(isinstance(f, hf.HeadersFrame) for f in mine), mine
    assert not any(isinstance(f, hf.RstStreamFrame) for f in mine), mine
    assert peak_kb(e) - before < 32 * 1024, (before, peak_kb(e))


def test_regress_h2_many_trailer_fields_cost_linear_memory(eddy):
    """13000 trailer fields "a: " (65 KB as text) on a body relayed
    chunked: r->trailers was copied whole for each, some 420 MB."""
    with Backend(echo_handler) as b:
        e = eddy(CONFIG % b.port)
        before = peak_kb(e)
        r = Raw(e.port)
        r.send(r.headers(1, [(":method", "POST"), (":scheme", "http"),
                             (":path", "/up/x"), (":authority", "a.test")],
                         end_stream=False))
        r.send(hf.DataFrame(1, b"x"))
        r.send(*block_frames(1, repeated(r, "a", "", 13000), True))
        assert r.until(ends(1), timeout=20)
        r.close()
        assert peak_kb(e) - before < 32 * 1024, (before, peak_kb(e))


def recording_backend(seen):
    """A backend that answers "up" and keeps each request in seen."""
    def handler(req, conn):
        seen.append(req)
        return response(200, b"up\n")
    return Backend(handler)


def test_regress_h2_trailer_with_control_bytes_not_relayed(eddy):
    """A trailer value with a CTL or DEL (a 400 in an HTTP/1.1 chunked
    trailer) went upstream as it came; now it is left out, the other
    trailers and the body go on."""
    seen = []
    with recording_backend(seen) as b:
        e = eddy(CONFIG % b.port)
        c = H2(e.port)
        sid = c.request("/up/t", method="POST", body=b"abc", end=False,
                        authority="a.test")
        c.conn.send_headers(sid, [("x-bad", "a\x01b\x1b[2J\x7f"),
                                  ("x-good", "fine")], end_stream=True)
        c.flush()
        r = c.wait(sid)
        c.close()
        assert r.status == 200 and r.body == b"up\n", r
        assert len(seen) == 1
        assert seen[0].raw_body == b"3\r\nabc\r\n0\r\nx-good: fine\r\n\r\n"


GET = [(":method", "GET"), (":scheme", "http"), (":path", "/"),
       (":authority", "a.test")]


def test_regress_h2_empty_cookie_crumbs_are_no_fields(eddy):
    """Empty crumbs add nothing to the joined cookie (no field at all
    when every one is empty), so they do not count against max_headers
    (100: Host and 99 fields); they each counted as a field, a 431.
    A pseudo-header after one is still malformed."""
    e = eddy(CONFIG % 1)
    c = H2(e.port)
    fields = [("cookie", "")] * 5 + [("x%d" % i, "v") for i in range(99)]
    ok = c.request(pseudo=GET + fields)
    late = c.request(pseudo=GET[:3] + [("cookie", ""), GET[3]])
    r = c.wait(ok)
    bad = c.wait(late)
    c.close()
    assert r.status == 200 and r.body == b"ok\n", r
    assert bad.reset == PROTOCOL_ERROR and bad.status is None, bad


@pytest.mark.parametrize("te", ["gzip, chunked", "identity, chunked",
                                "deflate,chunked"])
def test_regress_transfer_codings_eddy_does_not_undo_are_501(eddy, te):
    """A body coded gzip (deflate, ...) and then chunked went upstream
    with only chunked taken off and nothing saying it was still gzip;
    eddy undoes no coding but chunked, so such a request gets 501 (as
    from nginx) and reaches no upstream."""
    seen = []
    with recording_backend(seen) as b:
        e = eddy(CONFIG % b.port)
        out = e.raw(("POST /up/t HTTP/1.1\r\nHost: a\r\n"
                     "Transfer-Encoding: %s\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                     % te).encode())
        assert out.startswith(b"HTTP/1.1 501 "), out[:200]
        assert seen == []
