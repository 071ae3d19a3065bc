"""The headers module (config.md, inheritable `headers`): set, add and
remove on every response of a scope (errors, 304, HEAD and proxied
responses included), nearest-level inheritance, and config errors."""


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
    check_config_error(tmp_path, base % "replace: {X-A: b}", "replace",
                r'unknown key "replace" in headers')
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            headers: [X-A]
        """, "[X-A]", r"expected a mapping")


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
