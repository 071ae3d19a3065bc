"""The redirect handler (config.md) and the rule that header values eddy
writes cannot carry CR or LF (http.md, "Responses")."""

import re

import pytest

from httputil import Client, exchange, get, parse_all, request

CONFIG = r"""
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /secure:
        redirect: "https://$host$request_uri"
      '~ ^/s301/(.*)$':
        redirect: {to: "/new/$1", status: 301}
      '~ ^/s302/(.*)$':
        redirect: {to: "/new/$1", status: 302}
      '~ ^/s303/(.*)$':
        redirect: {to: "/new/$1", status: 303}
      '~ ^/s307/(.*)$':
        redirect: {to: "/new/$1", status: 307}
      '~ ^/s308/(.*)$':
        redirect: {to: "/new/$1", status: 308}
      '~ ^/two/(\w+)/(\w+)$':
        redirect: {to: "/swapped/$2/$1?from=$uri", status: 302}
      '~ ^/named/(?<rest>.*)$':
        redirect: {to: "https://example.test/n/$rest", status: 307}
      = /abs:
        redirect: "http://other.test/landing"
      /args:
        redirect: "/x?$args"
      /hdr:
        redirect: "/h/$http_x_test"
      /uri:
        redirect: "/u$uri"
      /:
        return: {status: 200, body: "root $uri"}
"""


@pytest.fixture
def srv(eddy):
    return eddy(CONFIG)


def redirect(srv, data, head=False):
    r, closed, rs = request(srv.port, data, head_request=head)
    return r


def test_default_301_with_variables(srv):
    r = redirect(srv, get("/secure/p?q=1&r=%20", host="www.example.test",
                          close=True))
    assert r.status == 301, r
    assert r.headers_all("Location") == [
        "https://www.example.test/secure/p?q=1&r=%20"]
    assert r.header("Content-Length") == str(len(r.body))
    assert b"301" in r.body
    assert r.header("Date") and r.header("Server")


@pytest.mark.parametrize("status,reason", [
    (301, "Moved Permanently"), (302, "Found"), (303, "See Other"),
    (307, "Temporary Redirect"), (308, "Permanent Redirect")])
def test_redirect_statuses(srv, status, reason):
    r = redirect(srv, get("/s%d/abc/def.html" % status, close=True))
    assert r.status == status, r
    assert r.reason == reason
    assert r.header("Location") == "/new/abc/def.html"
    assert str(status).encode() in r.body


def test_redirect_captures_and_variables(srv):
    r = redirect(srv, get("/two/first/second", close=True))
    assert r.status == 302
    assert r.header("Location") == "/swapped/second/first?from=/two/first/second"


def test_redirect_named_capture(srv):
    r = redirect(srv, get("/named/a/b/c", close=True))
    assert r.status == 307
    assert r.header("Location") == "https://example.test/n/a/b/c"


def test_redirect_absolute_target(srv):
    r = redirect(srv, get("/abs", close=True))
    assert r.status == 301
    assert r.header("Location") == "http://other.test/landing"


def test_redirect_host_from_absolute_form(srv):
    r = redirect(srv, b"GET http://abs.test/secure HTTP/1.1\r\n"
                      b"Host: ignored.test\r\nConnection: close\r\n\r\n")
    assert r.header("Location") == "https://abs.test/secure"


def test_redirect_head(srv):
    with Client(srv.port) as c:
        c.send(get("/s302/x", method="HEAD"))
        r = c.response(head_request=True)
        assert r.status == 302 and r.header("Location") == "/new/x"
        assert r.body == b""
        c.send(get("/after"))
        assert c.response().text == "root /after"


def test_redirect_keeps_connection(srv):
    with Client(srv.port) as c:
        for s in (301, 302, 303, 307, 308):
            c.send(get("/s%d/k" % s))
            r = c.response()
            assert r.status == s and not r.closes


def head_lines(r):
    return r.head.split(b"\r\n")


def assert_no_injection(out):
    """The response head is well formed (parse_all is strict: CRLF only,
    token names) and carries no header the attacker chose."""
    rs, rest = parse_all(out)
    assert rs, out
    for r in rs:
        for line in head_lines(r):
            assert not line.lower().startswith(b"set-cookie"), r.head
            assert not line.lower().startswith(b"x-injected"), r.head
        assert not r.has("Set-Cookie") and not r.has("X-Injected")
        for k, v in r.headers:
            assert "\r" not in v and "\n" not in v
    return rs


def test_args_with_encoded_crlf_stay_encoded(srv):
    out, closed = exchange(srv.port, get(
        "/args?a=%0d%0aSet-Cookie:%20evil=1&b=%0D%0AX-Injected:%201",
        close=True))
    r = assert_no_injection(out)[0]
    assert r.status == 301
    assert r.header("Location") == \
        "/x?a=%0d%0aSet-Cookie:%20evil=1&b=%0D%0AX-Injected:%201"
    assert b"\r\nSet-Cookie" not in out and b"\nSet-Cookie" not in out


def test_decoded_uri_with_crlf_not_injected(srv):
    """$uri is decoded: a %0d%0a in the path becomes CR LF in the value,
    which reaches the response head %-encoded again (and so does the
    space of %20: a URI has none)."""
    out, closed = exchange(srv.port, get(
        "/uri/%0d%0aSet-Cookie:%20evil=1", close=True))
    rs = assert_no_injection(out)
    assert len(rs) == 1 and rs[0].status == 301, out
    assert rs[0].headers_all("Location") == [
        "/u/uri/%0D%0ASet-Cookie:%20evil=1"]
    assert b"\r\nLocation: /u/uri/%0D%0ASet-Cookie:%20evil=1\r\n" in out


def test_decoded_uri_with_lf_only_not_injected(srv):
    out, closed = exchange(srv.port, get("/uri/%0aX-Injected:%201",
                                         close=True))
    r = assert_no_injection(out)[0]
    assert r.status == 301
    assert r.header("Location") == "/u/uri/%0AX-Injected:%201"


@pytest.mark.parametrize("path,location", [
    # The spelling: a capture of the decoded path.
    ("/s301/%0b%01x", b"/new/%0B%01x"),
    ("/s302/%7f%7F", b"/new/%7F%7F"),
    ("/s307/a%09b%20c", b"/new/a%09b%20c"),
    ("/s308/%1b%5b31m%1f", b"/new/%1B[31m%1F"),
    ("/uri/%01%0B%0d%0A%7f", b"/u/uri/%01%0B%0D%0A%7F"),
    # Bytes a field value may hold (obs-text) pass as they are.
    ("/uri/%e9%ff", b"/u/uri/\xe9\xff"),
])
def test_regress_location_control_chars_encoded(srv, path, location):
    """RFC 9110 5.5: no control character (nor DEL) in a field value; a
    URI has no space either. Whatever a variable holds, Location carries
    those bytes %-encoded: the exact line on the wire."""
    out, closed = exchange(srv.port, get(path, close=True))
    head = out.partition(b"\r\n\r\n")[0]
    lines = head.split(b"\r\n")
    assert lines[0].startswith(b"HTTP/1.1 30"), head
    assert [ln for ln in lines if ln.lower().startswith(b"location:")] == [
        b"Location: " + location]
    for ln in lines:
        assert not any(c < 0x20 or c == 0x7f for c in ln), ln


def test_regress_location_from_header_obs_text(srv):
    """A request header may hold obs-text, not controls (a control is a
    400 before any handler runs): the obs-text reaches Location as is."""
    out, closed = exchange(srv.port, b"GET /hdr HTTP/1.1\r\nHost: a\r\n"
                                     b"X-Test: \xc3\xa9\x80\r\n"
                                     b"Connection: close\r\n\r\n")
    assert b"\r\nLocation: /h/\xc3\xa9\x80\r\n" in out, out
    for ctl in (b"\x01", b"\x0b", b"\x7f"):
        out, closed = exchange(srv.port, b"GET /hdr HTTP/1.1\r\nHost: a\r\n"
                                         b"X-Test: a" + ctl + b"b\r\n"
                                         b"Connection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400 "), out


def test_request_header_cannot_carry_crlf_into_redirect(srv):
    """A request header value cannot contain CR or LF: a bare LF ends the
    field (the rest is another field), a bare CR is a 400."""
    out, closed = exchange(srv.port, b"GET /hdr HTTP/1.1\r\nHost: a\r\n"
                                     b"X-Test: v\nSet-Cookie: evil=1\r\n"
                                     b"Connection: close\r\n\r\n")
    r = assert_no_injection(out)[0]
    assert r.status == 301
    assert r.header("Location") == "/h/v"
    out, closed = exchange(srv.port, b"GET /hdr HTTP/1.1\r\nHost: a\r\n"
                                     b"X-Test: v\rSet-Cookie: evil=1\r\n"
                                     b"Connection: close\r\n\r\n")
    r = assert_no_injection(out)[0]
    assert r.status == 400


def test_redirect_from_header_value(srv):
    r = redirect(srv, b"GET /hdr HTTP/1.1\r\nHost: a\r\nX-Test: plain\r\n"
                      b"Connection: close\r\n\r\n")
    assert r.status == 301 and r.header("Location") == "/h/plain"


def test_redirect_body_is_html(srv):
    r = redirect(srv, get("/s308/z", close=True))
    assert r.header("Content-Type", "").startswith("text/html")
    assert re.search(rb"308", r.body)
