"""Parsing the request head and framing the body (http.md, "Parsing the
request head" and "Message body"), with raw bytes.

Most tests answer with a `return` location whose body echoes what eddy
understood of the request; the tests about a body that a handler really
reads use a `proxy` location in front of a tiny upstream (httputil.Backend).
"""

import time

import pytest

from httputil import (Backend, Client, assert_error_closed, exchange, get,
                      parse_all, request)

ECHO = ('"m=$request_method u=$uri a=$args r=$request_uri h=$host '
        'x=[$http_x_test]\\n"')

CONFIG = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: {status: 200, body: %s}
""" % ECHO

LIMITS = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    max_header_size: 1k
    max_headers: 5
    client_max_body_size: 10
    locations:
      /:
        return: {status: 200, body: %s}
""" % ECHO


@pytest.fixture
def srv(eddy):
    return eddy(CONFIG)


@pytest.fixture
def lim(eddy):
    return eddy(LIMITS)


def echo(r):
    """The echo body as a dict: m, u, a, r, h, x."""
    out = {}
    text = r.text.rstrip("\n")
    head, _, x = text.partition(" x=[")
    for part in head.split(" "):
        k, _, v = part.partition("=")
        out[k] = v
    assert x.endswith("]"), text
    out["x"] = x[:-1]
    return out


def ok(srv, data, **kw):
    """Send one request that must be answered 200; return the echo."""
    r, closed, rs = request(srv.port, data, **kw)
    assert r.status == 200, r
    return echo(r)


def bad(srv, data, status=400, http10=False):
    """Send malformed bytes; expect one error response and a close."""
    out, closed = exchange(srv.port, data)
    return assert_error_closed(out, closed, status, http10)


# --------------------------------------------------------------------------
# request line


def test_origin_form(srv):
    e = ok(srv, get("/p/q?x=1&y=%20", close=True))
    assert e["m"] == "GET"
    assert e["u"] == "/p/q"
    assert e["a"] == "x=1&y=%20"
    assert e["r"] == "/p/q?x=1&y=%20"
    assert e["h"] == "a"


def test_bare_lf_line_endings_accepted(srv):
    e = ok(srv, b"GET /lf HTTP/1.1\nHost: lf.test\nX-Test: v\n"
                b"Connection: close\n\n")
    assert (e["u"], e["h"], e["x"]) == ("/lf", "lf.test", "v")


def test_mixed_lf_and_crlf_accepted(srv):
    e = ok(srv, b"GET /mix HTTP/1.1\r\nHost: m\nX-Test: w\r\n"
                b"Connection: close\n\r\n")
    assert (e["u"], e["x"]) == ("/mix", "w")


@pytest.mark.parametrize("data", [
    b"GET /cr HTTP/1.1\rHost: a\r\n\r\n",
    b"GET /cr\r HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /cr HTTP/1.1\r\nHost: a\r\nX-Test: a\rb\r\n\r\n",
    b"GET /cr HTTP/1.1\r\nHost: a\r\nX-Test: ab\r\r\n\r\n",
    b"GET /cr HTTP/1.1\r\nHost: a\r\nX-Test: a\r\r\nSet-Cookie: x\r\n\r\n",
    b"GET /cr HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n",
], ids=["request-line", "in-target", "in-value", "before-crlf",
        "double-cr", "empty-line"])
def test_bare_cr_rejected(srv, data):
    bad(srv, data)


@pytest.mark.parametrize("lead", [b"\r\n", b"\r\n\r\n", b"\n", b"\n\r\n"])
def test_leading_empty_lines_skipped(srv, lead):
    e = ok(srv, lead + get("/lead", close=True))
    assert e["u"] == "/lead"


def test_leading_empty_lines_between_pipelined_requests(srv):
    with Client(srv.port) as c:
        c.send(get("/one") + b"\r\n" + get("/two", close=True))
        r1, r2 = c.responses(2)
        assert echo(r1)["u"] == "/one"
        assert echo(r2)["u"] == "/two"
        c.wait_closed(3)


@pytest.mark.parametrize("method", ["BREW", "PURGE", "get", "M-SEARCH",
                                    "X!#$%&'*+.^_`|~"])
def test_unknown_method_passed_to_handler(srv, method):
    e = ok(srv, get("/m", method=method, close=True))
    assert e["m"] == method
    assert e["u"] == "/m"


@pytest.mark.parametrize("line", [
    b"G(T / HTTP/1.1",
    b"GE\x01T / HTTP/1.1",
    b"G\"T / HTTP/1.1",
    b" / HTTP/1.1",
    b"GET",
    b"GET /",
    b"GET / HTTP/1.1 extra",
    b"GET /a b HTTP/1.1",
    b"GET /a\x00b HTTP/1.1",
    b"GET /a\x7fb HTTP/1.1",
    b"GET p HTTP/1.1",
    b"GET * HTTP/1.1",
    b"GET  HTTP/1.1",
], ids=["paren-method", "ctl-method", "quote-method", "no-method",
        "method-only", "http09", "extra-token", "space-in-target",
        "nul-in-target", "del-in-target", "relative-target", "asterisk-get",
        "empty-target"])
def test_malformed_request_line(srv, line):
    bad(srv, line + b"\r\nHost: a\r\n\r\n")


def test_options_asterisk(srv):
    with Client(srv.port) as c:
        c.send(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        r = c.response()
        assert r.status == 200, r
        allow = r.header("Allow")
        assert allow, r
        methods = {m.strip() for m in allow.split(",")}
        assert {"GET", "HEAD", "OPTIONS"} <= methods, allow
        assert not r.closes
        # The connection stays usable.
        c.send(get("/after"))
        assert echo(c.response())["u"] == "/after"


def test_options_path_goes_to_handler(srv):
    e = ok(srv, get("/opt", method="OPTIONS", close=True))
    assert (e["m"], e["u"]) == ("OPTIONS", "/opt")


@pytest.mark.parametrize("line", [
    b"GET example.com:80 HTTP/1.1",
    b"POST example.com:443 HTTP/1.1",
    b"OPTIONS example.com:443 HTTP/1.1",
])
def test_authority_form_without_connect(srv, line):
    bad(srv, line + b"\r\nHost: example.com\r\n\r\n")


def test_connect_405_with_allow(srv):
    out, closed = exchange(srv.port, b"CONNECT example.com:443 HTTP/1.1\r\n"
                                     b"Host: example.com:443\r\n"
                                     b"Connection: close\r\n\r\n")
    rs, rest = parse_all(out)
    assert len(rs) == 1 and rest == b"", out
    r = rs[0]
    assert r.status == 405, r
    assert r.header("Allow"), r
    assert "CONNECT" not in r.header("Allow")
    assert b"405" in r.body


def test_absolute_form_overrides_host(srv):
    e = ok(srv, b"GET http://Abs.Example:8080/p/q?z=1 HTTP/1.1\r\n"
                b"Host: other.test\r\nConnection: close\r\n\r\n")
    assert e["h"] == "abs.example"
    assert e["u"] == "/p/q"
    assert e["a"] == "z=1"


def test_absolute_form_without_path(srv):
    e = ok(srv, b"GET http://abs.example HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
    assert (e["h"], e["u"]) == ("abs.example", "/")


def test_absolute_form_http10_without_host(srv):
    e = ok(srv, b"GET http://abs10.example/x HTTP/1.0\r\n\r\n")
    assert (e["h"], e["u"]) == ("abs10.example", "/x")


# --------------------------------------------------------------------------
# version


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/4.0",
                                     b"HTTP/9.9"])
def test_unsupported_version_505(srv, version):
    r = bad(srv, b"GET / " + version + b"\r\nHost: a\r\n\r\n", 505)
    assert b"505" in r.body


@pytest.mark.parametrize("version", [
    b"HTTP/1", b"HTTP/1.x", b"HTTP/11", b"http/1.1", b"HTTPS/1.1",
    b"HTTP/1.1.1", b"HTTP/a.b", b"HTTP 1.1", b"XTTP/1.1", b"HTTP/1.",
    b"HTTP/.1",
])
def test_garbage_version_400(srv, version):
    bad(srv, b"GET / " + version + b"\r\nHost: a\r\n\r\n")


def test_http10_accepted(srv):
    data, closed = exchange(srv.port, b"GET /ten HTTP/1.0\r\n\r\n")
    rs, rest = parse_all(data)
    assert len(rs) == 1 and rs[0].status == 200
    assert rs[0].version in ("1.0", "1.1")
    assert echo(rs[0])["u"] == "/ten"
    assert closed


# --------------------------------------------------------------------------
# header fields


@pytest.mark.parametrize("line", [
    b"X-Test : v",
    b"X-Test\t: v",
    b"Host : a",
], ids=["space", "tab", "host-space"])
def test_whitespace_before_colon(srv, line):
    bad(srv, b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n")


@pytest.mark.parametrize("fold", [b" folded", b"\tfolded", b"  "])
def test_obs_fold_rejected(srv, fold):
    bad(srv, b"GET / HTTP/1.1\r\nHost: a\r\nX-Test: a\r\n" + fold
        + b"\r\n\r\n")


def test_obs_fold_first_line_rejected(srv):
    bad(srv, b"GET / HTTP/1.1\r\n Host: a\r\n\r\n")


def test_nul_in_value_rejected(srv):
    bad(srv, b"GET / HTTP/1.1\r\nHost: a\r\nX-Test: a\x00b\r\n\r\n")


@pytest.mark.parametrize("line", [
    b"X(Test): v",
    b"X Test: v",
    b": v",
    b"X\x01Test: v",
    b"X\"Test\": v",
    b"X@Test: v",
    b"X\x7fTest: v",
    b"X\xffTest: v",
    b"NoColonHere",
], ids=["paren", "space", "empty", "ctl", "quote", "at", "del", "high",
        "no-colon"])
def test_invalid_field_name(srv, line):
    bad(srv, b"GET / HTTP/1.1\r\nHost: a\r\n" + line + b"\r\n\r\n")


def test_ows_trimmed(srv):
    e = ok(srv, b"GET / HTTP/1.1\r\nHost: a\r\nX-Test: \t hello  world \t "
                b"\r\nConnection: close\r\n\r\n")
    assert e["x"] == "hello  world"


def test_ows_without_space(srv):
    e = ok(srv, b"GET / HTTP/1.1\r\nHost: a\r\nX-Test:tight\r\n"
                b"Connection: close\r\n\r\n")
    assert e["x"] == "tight"


def test_empty_value(srv):
    e = ok(srv, b"GET / HTTP/1.1\r\nHost: a\r\nX-Test:  \r\n"
                b"Connection: close\r\n\r\n")
    assert e["x"] == ""


def test_field_names_case_insensitive(srv):
    e = ok(srv, b"GET / HTTP/1.1\r\nhOsT: mixed.test\r\nx-TEST: v\r\n"
                b"Connection: close\r\n\r\n")
    assert (e["h"], e["x"]) == ("mixed.test", "v")


def test_obs_text_in_value_accepted(srv):
    r, closed, rs = request(srv.port, b"GET / HTTP/1.1\r\nHost: a\r\n"
                                      b"X-Test: caf\xc3\xa9\r\n"
                                      b"Connection: close\r\n\r\n")
    assert r.status == 200
    assert "x=[caf\u00e9]" in r.text


def test_http11_without_host(srv):
    bad(srv, b"GET / HTTP/1.1\r\nX-Test: v\r\n\r\n")


@pytest.mark.parametrize("hosts", [
    b"Host: a\r\nHost: b\r\n",
    b"Host: a\r\nHost: a\r\n",
    b"Host: a\r\nhost: a\r\n",
], ids=["differ", "same", "case"])
def test_two_hosts(srv, hosts):
    bad(srv, b"GET / HTTP/1.1\r\n" + hosts + b"\r\n")


def test_http10_without_host(srv):
    data, closed = exchange(srv.port, b"GET /nohost HTTP/1.0\r\n\r\n")
    rs, _ = parse_all(data)
    assert rs and rs[0].status == 200, data
    assert echo(rs[0])["u"] == "/nohost"


def test_http10_two_hosts(srv):
    bad(srv, b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", http10=True)


# --------------------------------------------------------------------------
# message body framing (the return handler does not read the body: eddy
# validates the framing and discards it)


def test_content_length_and_transfer_encoding(srv):
    data = (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n"
            + get("/smuggled"))
    out, closed = exchange(srv.port, data)
    assert_error_closed(out, closed, 400)
    assert b"smuggled" not in out


def test_transfer_encoding_then_content_length(srv):
    data = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 3\r\n\r\n0\r\n\r\n")
    bad(srv, data)


@pytest.mark.parametrize("te", [b"chunked, gzip", b"gzip", b"deflate",
                                b"chunked, chunked, gzip"])
def test_te_not_ending_in_chunked(srv, te):
    bad(srv, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te
        + b"\r\n\r\n0\r\n\r\n")


@pytest.mark.parametrize("te", [b"foo, chunked", b"x-custom, chunked"])
def test_te_unknown_coding_501(srv, te):
    bad(srv, b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te
        + b"\r\n\r\n0\r\n\r\n", 501)


def test_te_in_http10(srv):
    bad(srv, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"0\r\n\r\n", http10=True)


@pytest.mark.parametrize("cl", [
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Content-Length: 5, 6\r\n",
    b"Content-Length: 5\r\nContent-Length: 5, 6\r\n",
], ids=["two-fields", "list", "mixed"])
def test_differing_content_lengths(srv, cl):
    bad(srv, b"POST / HTTP/1.1\r\nHost: a\r\n" + cl + b"\r\nhello!")


@pytest.mark.parametrize("cl", [
    b"Content-Length: 5\r\nContent-Length: 5\r\n",
    b"Content-Length: 5, 5\r\n",
], ids=["two-fields", "list"])
def test_identical_content_lengths(srv, cl):
    with Client(srv.port) as c:
        c.send(b"POST /first HTTP/1.1\r\nHost: a\r\n" + cl
               + b"\r\nhello" + get("/second", close=True))
        r1, r2 = c.responses(2)
        assert r1.status == 200 and echo(r1)["u"] == "/first"
        assert r2.status == 200 and echo(r2)["u"] == "/second"


@pytest.mark.parametrize("value", [
    b"+5", b"-1", b"5a", b"0x5", b"5 5", b"", b"1e3", b"5.0",
    b"99999999999999999999999999",
], ids=["plus", "negative", "suffix", "hex", "space", "empty", "exp",
        "decimal", "overflow"])
def test_bad_content_length(srv, value):
    bad(srv, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + value
        + b"\r\n\r\nhello")


def test_content_length_body_discarded_before_next_request(srv):
    with Client(srv.port) as c:
        # The body looks like a request: it must not be parsed as one.
        body = get("/smuggled")
        c.send(b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n"
               b"\r\n" % len(body) + body + get("/second", close=True))
        r1, r2 = c.responses(2)
        assert echo(r1)["u"] == "/first"
        assert echo(r2)["u"] == "/second"
        data = c.wait_closed(3)
        assert data == b""


def test_content_length_body_in_pieces(srv):
    with Client(srv.port) as c:
        c.send(b"POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n"
               b"\r\n01234")
        r1 = c.response()
        assert echo(r1)["u"] == "/first"
        time.sleep(0.1)
        c.send(b"56789" + get("/second"))
        assert echo(c.response())["u"] == "/second"


CHUNKED_BODY = (b"4;name=value\r\nWiki\r\n"
                b"5;a;b=\"q v\"\r\npedia\r\n"
                b"E\r\n in\r\n\r\nchunks.\r\n"
                b"0;last\r\n"
                b"X-Trailer: t\r\nAnother-Trailer: u\r\n\r\n")


def test_chunked_with_extensions_and_trailers(srv):
    with Client(srv.port) as c:
        c.send(b"POST /first HTTP/1.1\r\nHost: a\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY
               + get("/second", close=True))
        r1, r2 = c.responses(2)
        assert r1.status == 200 and echo(r1)["u"] == "/first"
        assert r2.status == 200 and echo(r2)["u"] == "/second"
        assert c.wait_closed(3) == b""


def test_chunked_body_in_separate_writes(srv):
    with Client(srv.port) as c:
        c.send(b"POST /first HTTP/1.1\r\nHost: a\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        assert echo(c.response())["u"] == "/first"
        for i in range(0, len(CHUNKED_BODY), 7):
            c.send(CHUNKED_BODY[i:i + 7])
            time.sleep(0.005)
        c.send(get("/second"))
        assert echo(c.response())["u"] == "/second"


def test_chunked_lowercase_and_case_insensitive_te(srv):
    with Client(srv.port) as c:
        c.send(b"POST /first HTTP/1.1\r\nHost: a\r\n"
               b"Transfer-Encoding: Chunked\r\n\r\n"
               b"a\r\n0123456789\r\n0\r\n\r\n" + get("/second"))
        r1, r2 = c.responses(2)
        assert echo(r1)["u"] == "/first"
        assert echo(r2)["u"] == "/second"


BAD_CHUNKS = [
    b"zz\r\nhello\r\n0\r\n\r\n",
    b"-5\r\nhello\r\n0\r\n\r\n",
    b"+5\r\nhello\r\n0\r\n\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"5 \r\nhello\r\n0\r\n\r\n",
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"1" + b"0" * 20 + b"\r\nhello\r\n0\r\n\r\n",
    b"\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX\r\n0\r\n\r\n",
    b"5\r\nhello0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
]
BAD_CHUNK_IDS = ["non-hex", "negative", "plus", "leading-space",
                 "trailing-space", "0x", "overflow", "empty-size",
                 "data-too-long", "missing-crlf", "bare-lf"]


@pytest.mark.parametrize("chunks", BAD_CHUNKS, ids=BAD_CHUNK_IDS)
def test_bad_chunked_body_discarded_closes(srv, chunks):
    """The handler answered before the body was read; the bad chunk
    found while discarding must close the connection: the request that
    follows is never answered."""
    data = (b"POST /first HTTP/1.1\r\nHost: a\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunks
            + get("/smuggled"))
    out, closed = exchange(srv.port, data)
    rs, rest = parse_all(out)
    assert closed, "connection not closed after a bad chunked body: %r" % out
    assert b"smuggled" not in out, out
    assert 1 <= len(rs) <= 2, out
    assert rs[0].status in (200, 400), rs[0]
    if len(rs) == 2:
        # a 400 for the body after the handler's answer, if any
        assert rs[1].status == 400


# --------------------------------------------------------------------------
# limits: max_header_size 1k, max_headers 5, client_max_body_size 10


def test_request_line_too_long_414(lim):
    r = bad(lim, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            414)
    assert b"414" in r.body


def test_request_line_too_long_without_end_414(lim):
    """The request line alone goes over the limit before any LF."""
    out, closed = exchange(lim.port, b"GET /" + b"a" * 1500)
    assert_error_closed(out, closed, 414)


def test_headers_too_big_431(lim):
    bad(lim, b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 1500
        + b"\r\n\r\n", 431)


def test_many_small_headers_too_big_431(lim):
    hdrs = b"".join(b"X-H: " + b"v" * 300 + b"\r\n" for _ in range(4))
    bad(lim, b"GET / HTTP/1.1\r\nHost: a\r\n" + hdrs + b"\r\n", 431)


def test_head_under_size_limit(lim):
    e = ok(lim, b"GET /small HTTP/1.1\r\nHost: a\r\nX-Test: " + b"s" * 800
           + b"\r\nConnection: close\r\n\r\n")
    assert e["x"] == "s" * 800


def test_max_headers_exceeded_431(lim):
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(5))
    bad(lim, b"GET / HTTP/1.1\r\nHost: a\r\n" + hdrs + b"\r\n", 431)


def test_max_headers_reached_ok(lim):
    # Host + 3 + Connection = 5 fields
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(3))
    e = ok(lim, b"GET /five HTTP/1.1\r\nHost: a\r\n" + hdrs
           + b"Connection: close\r\n\r\n")
    assert e["u"] == "/five"


def test_body_too_large_413_before_reading(lim):
    """The 413 comes from Content-Length alone, without the body."""
    with Client(lim.port) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n")
        r = c.response(timeout=3)
        assert r.status == 413, r
        assert r.closes
        assert b"413" in r.body
        c.wait_closed(3)


def test_body_at_limit_ok(lim):
    with Client(lim.port) as c:
        c.send(b"POST /ten HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"
               b"0123456789" + get("/next"))
        r1, r2 = c.responses(2)
        assert r1.status == 200 and echo(r1)["u"] == "/ten"
        assert r2.status == 200 and echo(r2)["u"] == "/next"


def test_expect_100_continue_not_read_sends_final_status(lim):
    """A return handler does not read the body: no 100 Continue, the final
    status straight away."""
    with Client(lim.port) as c:
        c.send(b"POST /exp HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.response(timeout=3)
        assert r.status == 200, r
        assert echo(r)["u"] == "/exp"
        assert b"100 Continue" not in r.raw


def test_expect_100_continue_too_large_413(lim):
    with Client(lim.port) as c:
        c.send(b"POST /exp HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.response(timeout=3)
        assert r.status == 413, r
        data = c.wait_closed(3)
        assert b"100 Continue" not in data


# --------------------------------------------------------------------------
# bodies that a handler reads (proxy to a local upstream)

PROXY = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    client_max_body_size: 100
    client_body_timeout: 1s
    locations:
      /:
        proxy: {pass: "http://127.0.0.1:BACKEND"}
"""


@pytest.fixture
def prx(eddy):
    b = Backend()
    try:
        e = eddy(PROXY.replace("BACKEND", str(b.port)))
        e.backend = b
        yield e
    finally:
        b.stop()


def test_read_chunked_body_dechunked(prx):
    r, closed, _ = request(prx.port, b"POST /up HTTP/1.1\r\nHost: a\r\n"
                                     b"Transfer-Encoding: chunked\r\n"
                                     b"Connection: close\r\n\r\n"
                                     + CHUNKED_BODY)
    assert r.status == 200, r
    assert r.body == b"got 23 bytes: Wikipedia in\r\n\r\nchunks.", r.body


def test_read_content_length_body(prx):
    r, closed, _ = request(prx.port, b"POST /up HTTP/1.1\r\nHost: a\r\n"
                                     b"Content-Length: 5\r\n"
                                     b"Connection: close\r\n\r\nhello")
    assert r.status == 200, r
    assert r.body == b"got 5 bytes: hello"


@pytest.mark.parametrize("chunks", BAD_CHUNKS, ids=BAD_CHUNK_IDS)
def test_bad_chunked_body_read_400(prx, chunks):
    data = (b"POST /up HTTP/1.1\r\nHost: a\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunks
            + get("/smuggled"))
    out, closed = exchange(prx.port, data)
    assert_error_closed(out, closed, 400)
    assert b"smuggled" not in out


def test_chunked_total_over_limit_413(prx):
    chunks = b"".join(b"20\r\n" + b"x" * 32 + b"\r\n" for _ in range(5))
    out, closed = exchange(prx.port, b"POST /up HTTP/1.1\r\nHost: a\r\n"
                                     b"Transfer-Encoding: chunked\r\n\r\n"
                                     + chunks + b"0\r\n\r\n")
    assert_error_closed(out, closed, 413)


def test_expect_100_continue_when_body_is_read(prx):
    with Client(prx.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        r = c.response(timeout=3)
        assert r.status == 100, r
        assert r.raw.startswith(b"HTTP/1.1 100 Continue\r\n"), r.raw
        c.send(b"hello")
        r = c.response(timeout=5)
        assert r.status == 200, r
        assert r.body == b"got 5 bytes: hello"


def test_expect_100_continue_too_large_no_100(prx):
    with Client(prx.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.response(timeout=3)
        assert r.status == 413, r


def test_body_timeout_when_read_408(prx):
    with Client(prx.port) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\n"
               b"only ten b")
        t0 = time.monotonic()
        data, closed = c.read_until_close(4)
        elapsed = time.monotonic() - t0
        assert closed, "connection open after client_body_timeout"
        assert elapsed < 3, elapsed
        rs, _ = parse_all(data)
        assert rs and rs[0].status == 408, data


# --------------------------------------------------------------------------
# the request-target grammar (RFC 9112 3.2, RFC 3986): a target that is not
# one never reaches a location, an access rule or an upstream

GUARDED = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /echo/admin:
        access: [{deny: all}]
        proxy: {pass: "http://127.0.0.1:BACKEND"}
      /echo/:
        proxy: {pass: "http://127.0.0.1:BACKEND"}
      /moved/:
        proxy: {pass: "http://127.0.0.1:BACKEND/echo/"}
"""


@pytest.fixture
def guarded(eddy):
    from proxy_backend import Backend as EchoBackend
    with EchoBackend() as b:
        e = eddy(GUARDED.replace("BACKEND", str(b.port)))
        e.backend = b
        yield e


@pytest.mark.parametrize("target", [
    b"/echo/admin#",
    b"/echo/admin#x",
    b"/echo/admin#/../public",
    b"/echo/admin?#",
    b"/echo/admin?a=b#c",
    b"/echo/ad#min",
    b"http://a/echo/admin#",
    b"http://a/echo/admin?#x",
    b"/echo/admin\"",
    b"/echo/admin<",
    b"/echo/admin\\",
    b"/echo/admin{}",
    b"/echo/admin|",
    b"/echo/admin^",
    b"/echo/admin`",
    b"/echo/admin[0]",
    b"/echo/admin\xc3\xa9",
    b"/echo/admin\x80",
    b"/echo/admin%zz",
    b"/echo/admin%4",
    b"/echo/admin?q=%",
    b"/echo/admin?q=%g0",
])
def test_regress_target_outside_grammar_400(guarded, target):
    """Nothing outside the grammar gets past the parser: not to the exact
    location's deny (which "#..." used to slip by) and not to the
    upstream, which used to receive the raw bytes."""
    bad(guarded, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert guarded.backend.requests == []


def test_regress_target_exact_deny_holds(guarded):
    """The deny answers its own path; an escaped '#' is a different path
    (the location match is on the decoded path, as nginx does) and
    reaches the upstream still escaped, never as a raw '#'."""
    r, closed, _ = request(guarded.port, get("/echo/admin", close=True))
    assert r.status == 403, r
    r, closed, _ = request(guarded.port, get("/echo/%61dmin", close=True))
    assert r.status == 403, r
    r, closed, _ = request(guarded.port, get("/echo/admin%23", close=True))
    assert r.status == 200, r
    assert r.body == b"GET /echo/admin%23\n", r.body
    r, closed, _ = request(guarded.port, get("/moved/admin%23?q=%23",
                                             close=True))
    assert r.status == 200, r
    assert r.body == b"GET /echo/admin%23?q=%23\n", r.body
    assert [q.target for q in guarded.backend.requests] == [
        "/echo/admin%23", "/echo/admin%23?q=%23"]


# --------------------------------------------------------------------------
# underscores_in_headers (config.md): field names with "_" are dropped
# unless allowed; they still count against the limits

UNDERSCORES = """
workers: 1
MAIN
servers:
  - listen: 127.0.0.1:{port}
    max_headers: 8
    SERVER
    locations:
      /echo/:
        proxy: {pass: "http://127.0.0.1:BACKEND"}
KEYED
      /vars:
        return: {status: 200, body: "[$http_a_b][$http_x_real_ip][$http_x_ok]"}
"""

KEYED = """
      /allowed/:
        underscores_in_headers: true
        proxy: {pass: "http://127.0.0.1:BACKEND"}
      /denied/:
        underscores_in_headers: false
        proxy: {pass: "http://127.0.0.1:BACKEND"}"""

SNEAKY = [("X_Real_IP", "6.6.6.6"), ("x_forwarded_for", "6.6.6.7"),
          ("_", "u"), ("A_B", "y"), ("X-Ok", "1")]
UNDERSCORE_NAMES = [n for n, _ in SNEAKY if "_" in n]


def underscores_srv(eddy, main="", server="", keyed=True):
    from proxy_backend import Backend as EchoBackend
    b = EchoBackend()
    try:
        text = UNDERSCORES.replace("KEYED", KEYED.strip("\n") if keyed
                                   else "")
        e = eddy(text.replace("BACKEND", str(b.port))
                 .replace("MAIN", main).replace("SERVER", server))
    except BaseException:
        b.close()
        raise
    e.backend = b
    return e


def sent_names(req):
    return [n for n, _ in req.headers]


def ask(e, target):
    r, closed, _ = request(e.port, get(target, headers=SNEAKY, close=True))
    assert r.status == 200, r
    return r


def test_regress_underscore_headers_dropped_by_default(eddy):
    e = underscores_srv(eddy, keyed=False)
    with e.backend:
        ask(e, "/echo/x")
        for req in e.backend.requests:
            names = sent_names(req)
            for n in UNDERSCORE_NAMES:
                assert n not in names, req.head
            assert b"6.6.6." not in req.head, req.head
            assert req.header_all("X-Real-IP") == ["127.0.0.1"], req.head
            assert req.header_all("X-Forwarded-For") == ["127.0.0.1"]
            assert req.header("X-Ok") == "1"
        # Not seen by $http_* either ($http_a_b would match A_B or A-B).
        assert ask(e, "/vars").body == b"[][][1]"
        r, closed, _ = request(e.port, get("/vars", headers=[
            ("A-B", "dash"), ("X_Real_IP", "6.6.6.6")], close=True))
        assert r.body == b"[dash][][]"


@pytest.mark.parametrize("main,server", [
    ("underscores_in_headers: true", ""),
    ("", "underscores_in_headers: on"),
    ("underscores_in_headers: false", "underscores_in_headers: true"),
], ids=["main", "server", "server-over-main"])
def test_underscore_headers_allowed(eddy, main, server):
    e = underscores_srv(eddy, main, server)
    with e.backend:
        ask(e, "/echo/x")
        req = e.backend.requests[0]
        names = sent_names(req)
        for n in UNDERSCORE_NAMES:
            assert n in names, req.head
        assert req.header("x_forwarded_for") == "6.6.6.7"
        assert ask(e, "/vars").body == b"[y][6.6.6.6][1]"
        # A location saying false drops them again.
        ask(e, "/denied/x")
        names = sent_names(e.backend.requests[1])
        assert not [n for n in names if "_" in n], names


def test_underscore_headers_allowed_in_one_location(eddy):
    e = underscores_srv(eddy)
    with e.backend:
        ask(e, "/allowed/x")
        ask(e, "/echo/x")
        ask(e, "/denied/x")
        first, second, third = e.backend.requests
        assert [n for n in sent_names(first) if "_" in n] == UNDERSCORE_NAMES
        assert [n for n in sent_names(second) if "_" in n] == []
        assert [n for n in sent_names(third) if "_" in n] == []


def test_underscores_in_headers_must_be_boolean(tmp_path):
    from conftest import check_config_error
    check_config_error(tmp_path, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                underscores_in_headers: maybe
                return: 204
        """, "maybe", "underscores_in_headers|boolean")


def test_regress_dropped_headers_still_count(eddy):
    """Dropped fields are parsed and counted all the same: max_headers
    (8 here) is not a way round them, nor they a way round it."""
    e = underscores_srv(eddy, keyed=False)
    with e.backend:
        # Host, Connection and 6 more: 8.
        hs = [("X_%d" % i, "v") for i in range(6)]
        r, closed, _ = request(e.port, get("/vars", headers=hs, close=True))
        assert r.status == 200, r
        # Host and 8 more: 9.
        hs = [("X_%d" % i, "v") for i in range(8)]
        bad(e, get("/vars", headers=hs), status=431)
        assert e.backend.requests == []
