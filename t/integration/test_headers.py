"""The headers module (config.md, inheritable `headers`): set, add and
remove on every response of a scope (errors, 304, HEAD and proxied
responses included), nearest-level inheritance, config errors, and values
from variables checked where the head is written (http.md)."""

import re

import pytest

from conftest import check_config_error, split_response
from proxy_backend import Backend, response

CONFIG = r"""
workers: 1
headers:
  set: {X-Level: main}
servers:
  - listen: 127.0.0.1:{port}
    root: {prefix}/html
    headers:
      set: {X-Level: server, X-Frame-Options: DENY}
      add: {X-Host: "h=$host", X-Multi: one}
      remove: [etag]
    locations:
      = /ok:
        return: {status: 200, body: "ok\n"}
      = /loc:
        headers:
          add: {X-Level: location}
        return: {status: 200, body: "loc\n"}
      = /none:
        headers: {}
        return: {status: 200, body: "none\n"}
      = /redirect:
        headers:
          set: {location: /elsewhere}
        redirect: /somewhere
      /static/:
        static: {etag: true}
      = /missing:
        return: 404
"""


def req(e, path, method="GET", extra=b""):
    data = e.raw(b"%s %s HTTP/1.1\r\nHost: example.test\r\n%s"
                 b"Connection: close\r\n\r\n"
                 % (method.encode(), path.encode(), extra))
    return split_response(data)


def test_server_block_set_add_remove(eddy):
    e = eddy(CONFIG)
    status, h, body = req(e, "/ok")
    assert status == 200 and body == b"ok\n"
    assert h["x-level"] == ["server"]
    assert h["x-frame-options"] == ["DENY"]
    assert h["x-host"] == ["h=example.test"]
    assert h["x-multi"] == ["one"]
    # Core headers are untouched.
    assert len(h["server"]) == 1 and len(h["date"]) == 1
    assert h["content-length"] == ["3"]


def test_location_block_replaces_outer_ones(eddy):
    e = eddy(CONFIG)
    status, h, _ = req(e, "/loc")
    assert status == 200
    assert h["x-level"] == ["location"]
    assert "x-frame-options" not in h and "x-host" not in h
    status, h, _ = req(e, "/none")
    assert status == 200
    assert "x-level" not in h and "x-frame-options" not in h


def test_errors_head_and_not_found(eddy):
    e = eddy(CONFIG)
    status, h, body = req(e, "/missing")
    assert status == 404 and b"404" in body
    assert h["x-frame-options"] == ["DENY"]
    # No location matches: the server's own settings apply.
    status, h, _ = req(e, "/nowhere")
    assert status == 404
    assert h["x-level"] == ["server"]
    status, h, body = req(e, "/ok", method="HEAD")
    assert status == 200 and body == b""
    assert h["x-multi"] == ["one"]
    # A malformed request never reaches a location: still the server's.
    data = e.raw(b"GET /ok HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
    status, h, _ = split_response(data)
    assert status == 400 and h["x-level"] == ["server"]


def test_set_replaces_handler_header(eddy):
    e = eddy(CONFIG)
    status, h, _ = req(e, "/redirect")
    assert status == 301
    assert h["location"] == ["/elsewhere"]


def test_static_remove_and_304(eddy):
    e = eddy(CONFIG, start=False)
    e.write_file("html/static/a.txt", "hello\n")
    e.start()
    status, h, body = req(e, "/static/a.txt")
    assert status == 200 and body == b"hello\n"
    assert "etag" not in h
    assert "last-modified" in h
    lm = h["last-modified"][0]
    status, h, body = req(e, "/static/a.txt",
                          extra=b"If-Modified-Since: %s\r\n" % lm.encode())
    assert status == 304 and body == b""
    assert h["x-frame-options"] == ["DENY"] and "etag" not in h


def test_proxied_response(eddy):
    def handler(rq, conn):
        return response(200, b"up\n", headers=[("X-Powered-By", "php"),
                                               ("X-Keep", "yes")])

    with Backend(handler) as b:
        e = eddy("""
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                headers:
                  remove: [x-powered-by]
                  add: {X-Keep: also}
                locations:
                  /:
                    proxy: {pass: "http://127.0.0.1:%d"}
            """ % b.port)
        status, h, body = req(e, "/")
    assert status == 200 and body == b"up\n"
    assert "x-powered-by" not in h
    assert h["x-keep"] == ["yes", "also"]



def test_config_errors(tmp_path):
    base = """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                headers:
                  %s
                return: 204
        """
    check_config_error(tmp_path, base % "set: {Server: mine}", "Server",
                r'header "Server"', r"written by eddy")
    check_config_error(tmp_path, base % "remove: [Content-Type]", "Content-Type",
                r"cannot be set, added or removed")
    check_config_error(tmp_path, base % "remove: [Content-Encoding]",
                       "Content-Encoding",
                       r"cannot be set, added or removed")
    check_config_error(tmp_path, base % "set: [X-A]", "[X-A]",
                       r"mapping")
    check_config_error(tmp_path, base % 'add: {"Bad Name": x}', '"Bad Name"',
                r"invalid header name")
    check_config_error(tmp_path, base % 'add: {X-A: "a\\r\\nb"}', '"a',
                r"expected one line")
    # Every control character but HTAB, as YAML escapes in the config.
    for esc in ("\\x01", "\\x0b", "\\x7f", "\\0", "\\e"):
        check_config_error(tmp_path, base % ('set: {X-A: "a%sb"}' % esc),
                           '"a', r'header "X-A" in headers.set: expected '
                           r"one line of text without control characters")
    check_config_error(tmp_path, base % "replace: {X-A: b}", "replace",
                r'unknown key "replace" in headers')
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            headers: [X-A]
        """, "[X-A]", r"expected a mapping")
    # The Content-Type header that `return` writes is checked alike.
    for esc in ("\\x01", "\\x7f", "\\r"):
        check_config_error(tmp_path, """
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    return: {body: x, content_type: "text/%splain"}
            """ % esc, '"text', r"return.content_type.*media type")


def test_headers_and_gzip_in_one_location(eddy):
    # gzip's header filter runs first, the headers block last: its set and
    # remove apply to the compressed response's head.
    import gzip as gz
    e = eddy("""
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /t:
        gzip: {enabled: true, min_length: 1, types: [text/plain]}
        headers:
          add: {X-Added: yes}
          set: {Vary: Cookie}
        return: {status: 200, body: "%s", content_type: text/plain}
""" % ("abc" * 200))
    status, h, body = req(e, "/t", extra=b"Accept-Encoding: gzip\r\n")
    assert status == 200
    assert h["content-encoding"] == ["gzip"]
    assert h["x-added"] == ["yes"]
    assert h["vary"] == ["Cookie"]
    # The body is chunked: take the chunks apart.
    out, rest = b"", body
    while True:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out, rest = out + rest[:n], rest[n + 2:]
    assert gz.decompress(out) == b"abc" * 200


CTL_CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    headers:
      add: {X-Uri: "u=$uri", X-Agent: "$http_user_agent", X-Ok: fine}
      set: {X-Set: "s=$uri"}
    locations:
      /:
        return: {status: 200, body: "ok\n"}
"""


@pytest.mark.parametrize("path,raw", [
    ("/a%01b", b"/a\x01b"), ("/a%0bb", b"/a\x0bb"),
    ("/a%7fb", b"/a\x7fb"), ("/a%0D%0Ab", b"/a\r\nb"),
    ("/a%1b%5b2Jb", b"/a\x1b[2Jb"), ("/%0a", b"/\n"),
])
def test_regress_header_from_variable_with_control_dropped(eddy, path, raw):
    """A value a variable filled with a control character (here the
    decoded $uri) is dropped with a warn line; the others go out, and
    the head holds no control character at all."""
    e = eddy(CTL_CONFIG)
    data = e.raw(b"GET %s HTTP/1.1\r\nHost: t\r\nUser-Agent: ua\r\n"
                 b"Connection: close\r\n\r\n" % path.encode())
    head = data.partition(b"\r\n\r\n")[0]
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK", head
    names = [ln.split(b":", 1)[0] for ln in lines[1:]]
    assert b"X-Uri" not in names and b"X-Set" not in names, head
    assert b"X-Agent: ua" in lines and b"X-Ok: fine" in lines
    for ln in lines:
        assert not any(c < 0x20 or c == 0x7f for c in ln), ln
    assert raw not in data
    log = e.error_log
    for name in ("X-Uri", "X-Set"):
        assert re.search(r'\[warn\] .*response header "%s" dropped: a '
                         r"control character in its name or value" % name,
                         log), log


def test_regress_header_obs_text_and_htab_kept(eddy):
    """obs-text and HTAB are field-value bytes: sent as they are."""
    e = eddy(CTL_CONFIG)
    data = e.raw(b"GET /x%e9%09y HTTP/1.1\r\nHost: t\r\n"
                 b"User-Agent: \xc3\xa9\tz\x80\r\nConnection: close\r\n\r\n")
    head = data.partition(b"\r\n\r\n")[0]
    lines = head.split(b"\r\n")
    assert b"X-Uri: u=/x\xe9\ty" in lines, head
    assert b"X-Set: s=/x\xe9\ty" in lines, head
    assert b"X-Agent: \xc3\xa9\tz\x80" in lines, head
    assert "dropped" not in e.error_log
