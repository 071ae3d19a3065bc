"""The target sent upstream when the URI was rewritten inside eddy
(try_files fallback, error_pages redirect) into a proxied location whose
pass has a path: the rewritten URI, %-encoded, may be much longer than
the client's target, and must reach the backend whole and exact."""

import pytest

from conftest import check_config_error, read_response, split_response
from proxy_backend import Backend

SAFE = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
           b"-._~!$&'()*+,;=:@/")


def encode(raw):
    """The path encoding of the proxy: unreserved, sub-delims, ':', '@'
    and '/' as they are, every other byte %XX."""
    return "".join(chr(c) if c in SAFE else "%%%02X" % c for c in raw)


def conf(text, **ports):
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def exchange(e, data):
    s = e.connect()
    try:
        s.sendall(data)
        return split_response(read_response(s))
    finally:
        s.close()


def assert_no_crash(e, pids):
    """The one worker answered everything itself: same pid, no death in
    the log."""
    assert e.worker_pids() == pids
    log = e.all_logs()
    assert "killed by signal" not in log
    assert "exited with code" not in log


FALLBACK = """
    workers: 1
    error_log: logs/error.log
    servers:
      - listen: 127.0.0.1:{port}
        root: html
        locations:
          /t/:
            static: {try_files: [$uri, "/fb/$http_x_long"]}
          /fb/:
            proxy: {pass: "http://127.0.0.1:@B@/base/"}
"""


def test_regress_try_files_fallback_long_encoded_uri(eddy):
    """A header of bytes that all need %-encoding makes the fallback URI
    three times longer on the wire than anything the client sent."""
    spellings = [
        b'"' * 4000,
        b"%" * 4000,
        b"\xff" * 3000,
        b"<" + b" " * 3000 + b">",
        b"#[]" * 1000 + b"{}|^`",
        (b'"' * 700 + b"a") * 9,
    ]
    with Backend() as b:
        e = eddy(conf(FALLBACK, B=b.port))
        pids = e.wait_workers(1)
        for i, long in enumerate(spellings):
            status, _, body = exchange(
                e, b"GET /t/missing?q=%d HTTP/1.1\r\nHost: a\r\n"
                   b"X-Long: " % i + long + b"\r\n\r\n")
            want = "/base/" + encode(long) + "?q=%d" % i
            assert status == 200
            assert b.requests[-1].target == want
            assert body == ("GET %s\n" % want).encode()
        assert len(b.requests) == len(spellings)
        assert_no_crash(e, pids)


def test_regress_try_files_fallback_many_headers(eddy):
    """The rewritten URI grows while the other headers are many and
    small: every byte of the head is still accounted for."""
    with Backend() as b:
        e = eddy(conf(FALLBACK, B=b.port))
        pids = e.wait_workers(1)
        extra = b"".join(b"X-%d: v\r\n" % i for i in range(60))
        status, _, _ = exchange(
            e, b"GET /t/x HTTP/1.1\r\nHost: a\r\n" + extra
               + b"X-Long: " + b"\x80" * 2000 + b"\r\n\r\n")
        assert status == 200
        req = b.requests[-1]
        assert req.target == "/base/" + "%80" * 2000
        assert [req.header("X-%d" % i) for i in range(60)] == ["v"] * 60
        assert_no_crash(e, pids)


def test_regress_error_page_redirect_long_encoded_uri(eddy):
    """An error_pages URI into a proxied location is encoded and sent
    whole, however short the client's target."""
    page = '/fb/' + '"' * 3000 + '<x>' + ' ' * 10 + 'end'
    with Backend() as b:
        e = eddy(conf("""
            workers: 1
            error_log: logs/error.log
            servers:
              - listen: 127.0.0.1:{port}
                root: html
                locations:
                  /s/:
                    error_pages: {404: '@PAGE@'}
                    static: {}
                  /fb/:
                    proxy: {pass: "http://127.0.0.1:@B@/base/"}
            """, B=b.port, PAGE=page))
        pids = e.wait_workers(1)
        for target in (b"/s/a", b"/s/a?k=v"):
            status, _, body = exchange(
                e, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            # The error status stays; the body is the backend's.
            assert status == 404
            query = target.partition(b"?")[2].decode()
            want = "/base/" + encode(page[4:].encode()) \
                + ("?" + query if query else "")
            assert b.requests[-1].target == want
            assert body == ("GET %s\n" % want).encode()
        assert_no_crash(e, pids)


def test_regress_set_headers_replace_forwarding_headers(eddy):
    """set_headers replaces (or, empty, removes) a forwarding header that
    forwarded: true writes: each goes out once, never twice."""
    with Backend() as b:
        e = eddy(conf("""
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy:
                      pass: "http://127.0.0.1:@B@"
                      set_headers: {X-Real-IP: "set-$remote_addr", x-forwarded-for: ""}
            """, B=b.port))
        r = e.get("/x", headers={"X-Real-IP": "1.2.3.4",
                                 "X-Forwarded-For": "9.9.9.9"})
        assert r.status == 200
        req = b.requests[0]
        assert req.header_all("X-Real-IP") == ["set-127.0.0.1"]
        assert req.header_all("X-Forwarded-For") == []
        assert req.header_all("X-Forwarded-Proto") == ["http"]
        assert req.header_all("Host") == ["127.0.0.1:%d" % e.port]


@pytest.mark.parametrize("name", [
    "Host", "content-length", "Transfer-Encoding", "Connection", "Upgrade",
    "HTTP2-Settings", "Keep-Alive", "TE", "Trailer", "Proxy-Connection",
    "Expect",
])
def test_regress_set_headers_own_header_refused(tmp_path, name):
    """A header the proxy writes itself (Host, framing) or never passes
    (hop-by-hop) cannot be set: it would go out twice or change how the
    upstream frames the request."""
    check_config_error(tmp_path, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        proxy: {pass: "http://127.0.0.1:9", set_headers: {%s: "1"}}
""" % name, name + ":", "cannot be set: the proxy writes it itself")


@pytest.mark.parametrize("path", [
    r"/a\tb", r"/a\r\nX-Evil: 1", r"/a\x7fb", r"/a\x01", "/a b",
    "/a?b", "/a#b", r"/a\xc3\xa9", "/a<b>", "/a%zz", "/a%4", "/a\\\\b",
    "/a^b", "/a{b}", "/a|b",
])
def test_regress_pass_path_bytes_refused(tmp_path, path):
    """The path of pass goes into the request line as it is: no byte that
    could end or split it."""
    check_config_error(tmp_path, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        proxy: {pass: "http://127.0.0.1:9%s"}
""" % path, '"http', "the path may hold only RFC 3986 path characters")


def test_regress_rewritten_uri_sent_when_pass_has_no_path(eddy):
    """pass without a path sends the client's target as received, but
    after an internal redirect the URI eddy serves is another one: that
    URI goes upstream, encoded (nginx's rule), never the client's."""
    with Backend() as b:
        e = eddy(conf("""
            workers: 1
            error_log: logs/error.log
            servers:
              - listen: 127.0.0.1:{port}
                root: html
                locations:
                  /t/:
                    static: {try_files: [$uri, "/fb/$http_x_name"]}
                  /s/:
                    error_pages: {404: '/fb/page?from=s'}
                    static: {}
                  /fb/:
                    proxy: {pass: "http://127.0.0.1:@B@"}
            """, B=b.port))
        status, _, _ = exchange(
            e, b"GET /t/missing?q=1 HTTP/1.1\r\nHost: a\r\n"
               b"X-Name: a b\"c\r\n\r\n")
        assert status == 200
        assert b.requests[-1].target == "/fb/a%20b%22c?q=1"
        status, _, _ = exchange(
            e, b"GET /s/missing HTTP/1.1\r\nHost: a\r\n\r\n")
        assert b.requests[-1].target == "/fb/page?from=s"
        # Not redirected: the target exactly as the client sent it.
        status, _, _ = exchange(
            e, b"GET /fb/%2F%7e?x=%20 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert status == 200
        assert b.requests[-1].target == "/fb/%2F%7e?x=%20"


def test_regress_redirect_args_bad_escape(eddy):
    """Args an internal redirect takes from a template ($uri is decoded,
    a header holds any '%') reach the upstream as a valid query: a '%'
    without two hex digits after it is encoded as %25, never sent as it
    is (eddy's own parser refuses such a target: 400), while an escape
    already made (%41) stays as it is."""
    with Backend() as b:
        e = eddy(conf("""
            workers: 1
            error_log: logs/error.log
            servers:
              - listen: 127.0.0.1:{port}
                root: html
                locations:
                  /t/:
                    static: {try_files: [$uri, "/fb/x?q=$uri"]}
                  /h/:
                    static: {try_files: [$uri, "/fb/y?q=$http_x"]}
                  /fb/:
                    proxy: {pass: "http://127.0.0.1:@B@"}
            """, B=b.port))
        pids = e.wait_workers(1)
        cases = [
            (b"/t/a%25zz", b"", "/fb/x?q=/t/a%25zz"),
            (b"/t/a%25", b"", "/fb/x?q=/t/a%25"),
            (b"/t/a%25z", b"", "/fb/x?q=/t/a%25z"),
            (b"/t/100%25%2541", b"", "/fb/x?q=/t/100%25%41"),
            (b"/h/a", b"X: %zz%\r\n", "/fb/y?q=%25zz%25"),
            (b"/h/a", b"X: %4%41%g1\r\n", "/fb/y?q=%254%41%25g1"),
        ]
        for target, extra, want in cases:
            status, _, body = exchange(
                e, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + extra
                   + b"\r\n")
            assert status == 200
            assert b.requests[-1].target == want
            assert body == ("GET %s\n" % want).encode()
            # What went upstream is a target eddy itself accepts.
            status, _, _ = exchange(
                e, b"GET " + want.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            assert status == 200
        assert_no_crash(e, pids)
