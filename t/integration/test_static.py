"""The static module (config.md `static`, http.md "Static files"): files,
MIME types, validators and preconditions, index and autoindex, redirects
for directories, try_files, dotfiles, symlinks, methods, expires,
precompressed variants, root and alias, the implicit static handling of
locations without a handler, error pages, and configuration errors."""

import email.utils
import json
import os
import re
import socket

import pytest

from conftest import (format_config, free_port, position, read_response,
                      run_eddy, split_response)

CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    root: html
    error_pages: {404: /404.html}
    locations:
      /:
        static: {}
      /listing/:
        static: {autoindex: true}
      /listing-json/:
        static: {autoindex: json}
      /spa/:
        static: {try_files: [$uri, $uri/, /spa/index.html]}
      /strict/:
        static: {try_files: [$uri, =404]}
      /fallback/:
        static: {try_files: [$uri, /ret]}
      = /ret:
        return: {status: 200, body: "fallback\n"}
      /dots/:
        static: {dotfiles: allow}
      /cached/:
        static: {expires: 1h}
      /noval/:
        static: {etag: false, last_modified: false}
      /post/:
        static: {methods: [GET, POST]}
      /getonly/:
        static: {methods: [GET]}
      /multi/:
        static: {index: [missing.html, second.html]}
      /noindex/:
        static: {index: []}
      /assets/:
        static: {alias: {prefix}/assets/}
      = /one:
        static: {alias: {prefix}/assets/a.txt}
      /implicit/:
        keepalive_timeout: 10s
      /off/:
        static: false
      /other-root/:
        root: other
"""


def get(e, path, headers=None, method="GET", version="1.1"):
    """One raw request on its own connection; (status, headers, body).
    Header names are lower case, each mapped to its list of values."""
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: localhost",
             "Connection: close"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    raw, closed = e.raw_ex(data, timeout=5)
    assert closed, "the server did not close: %r" % raw[:300]
    return split_response(raw)


def one(headers, name):
    values = headers.get(name.lower(), [])
    assert len(values) == 1, "%s: %r" % (name, values)
    return values[0]


def site(e):
    """The files every test here uses."""
    e.write_file("html/index.html", "<h1>home</h1>\n")
    e.write_file("html/404.html", "custom not found\n")
    e.write_file("html/style.css", "body{}\n")
    e.write_file("html/app.js", "let a;\n")
    e.write_file("html/data.json", "{}\n")
    e.write_file("html/pic.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    e.write_file("html/blob.unknownext", b"\x00\x01")
    e.write_file("html/empty.txt", b"")
    e.write_file("html/dir/index.html", "dir index\n")
    e.write_file("html/dir/sub/leaf.txt", "leaf\n")
    e.write_file("html/a b/c d.txt", "spaced\n")
    e.write_file("html/.env", "SECRET=1\n")
    e.write_file("html/.git/config", "[core]\n")
    e.write_file("html/dots/.hidden", "visible when allowed\n")
    e.write_file("html/listing/b.txt", "bb\n")
    e.write_file("html/listing/a.txt", "a\n")
    e.write_file("html/listing/<b>&'x\".txt", "esc\n")
    e.write_file("html/listing/zdir/f", "f\n")
    e.write_file("html/listing/.secret", "no\n")
    e.write_file("html/listing-json/x.txt", "xyz\n")
    e.write_file("html/listing-json/q\"\\.txt", "q\n")
    e.write_file("html/listing-json/d/f", "f\n")
    e.write_file("html/spa/index.html", "spa shell\n")
    e.write_file("html/spa/real.txt", "real\n")
    e.write_file("html/spa/sub/index.html", "spa sub\n")
    e.write_file("html/strict/here.txt", "here\n")
    e.write_file("html/fallback/here.txt", "here\n")
    e.write_file("html/dots/x.txt", "x\n")
    e.write_file("html/cached/c.txt", "cache me\n")
    e.write_file("html/noval/n.txt", "no validators\n")
    e.write_file("html/post/p.txt", "post ok\n")
    e.write_file("html/getonly/g.txt", "get\n")
    e.write_file("html/multi/second.html", "second\n")
    e.write_file("html/noindex/index.html", "never\n")
    e.write_file("assets/a.txt", "asset a\n")
    e.write_file("assets/sub/b.txt", "asset b\n")
    e.write_file("html/implicit/i.txt", "implicit\n")
    e.write_file("html/off/o.txt", "off\n")
    e.write_file("other/other-root/r.txt", "other root\n")
    e.write_file("html/top.txt", "top\n")


@pytest.fixture
def srv(eddy):
    e = eddy(CONFIG, start=False)
    site(e)
    return e.start()


# -- files, types, validators


def test_static_small_file(srv):
    status, h, body = get(srv, "/index.html")
    assert status == 200
    assert body == b"<h1>home</h1>\n"
    assert one(h, "content-type") == "text/html; charset=utf-8"
    assert one(h, "content-length") == str(len(body))
    assert one(h, "accept-ranges") == "bytes"
    st = os.stat(srv.prefix / "html/index.html")
    etag = one(h, "etag")
    assert etag == '"%x-%x"' % (int(st.st_mtime), st.st_size)
    lm = email.utils.parsedate_to_datetime(one(h, "last-modified"))
    assert int(lm.timestamp()) == int(st.st_mtime)
    assert re.match(r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$",
                    one(h, "last-modified"))
    assert "cache-control" not in h
    assert "vary" not in h


def test_static_head(srv):
    status, h, body = get(srv, "/index.html", method="HEAD")
    assert status == 200
    assert body == b""
    assert one(h, "content-length") == "14"
    assert one(h, "content-type") == "text/html; charset=utf-8"
    assert "etag" in h and "last-modified" in h


def test_static_http10(srv):
    status, h, body = get(srv, "/style.css", version="1.0")
    assert status == 200 and body == b"body{}\n"


@pytest.mark.parametrize("path,ctype", [
    ("/style.css", "text/css; charset=utf-8"),
    ("/app.js", "application/javascript; charset=utf-8"),
    ("/data.json", "application/json"),
    ("/pic.png", "image/png"),
    ("/blob.unknownext", "application/octet-stream"),
    ("/empty.txt", "text/plain; charset=utf-8"),
])
def test_static_mime(srv, path, ctype):
    status, h, body = get(srv, path)
    assert status == 200
    assert one(h, "content-type") == ctype
    assert body == (srv.prefix / ("html" + path)).read_bytes()


def test_static_empty_file(srv):
    status, h, body = get(srv, "/empty.txt")
    assert status == 200 and body == b""
    assert one(h, "content-length") == "0"


def test_static_missing_uses_error_page(srv):
    status, h, body = get(srv, "/nope.html")
    assert status == 404
    assert body == b"custom not found\n"
    assert one(h, "content-type") == "text/html; charset=utf-8"


def test_static_mime_types_file_and_default_type(eddy):
    e = eddy("""
        workers: 1
        mime_types: conf/my.types
        default_type: text/x-custom
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              /:
                static: true
    """, start=False)
    e.write_file("conf/my.types", "# mine\napplication/x-thing thing THG\n"
                 "text/html html\n")
    e.write_file("html/a.thing", "t")
    e.write_file("html/b.thg", "t")
    e.write_file("html/c.css", "t")
    e.write_file("html/d.html", "t")
    e.start()
    assert one(get(e, "/a.thing")[1], "content-type") == "application/x-thing"
    assert one(get(e, "/b.thg")[1], "content-type") == "application/x-thing"
    # Not in this file: the default type, with charset (a text type).
    assert one(get(e, "/c.css")[1], "content-type") == \
        "text/x-custom; charset=utf-8"
    assert one(get(e, "/d.html")[1], "content-type") == \
        "text/html; charset=utf-8"


def test_static_shipped_mime_types(eddy):
    """The repository's conf/mime.types is what `make run` uses."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    e = eddy("""
        workers: 1
        mime_types: %s/conf/mime.types
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """ % repo, start=False)
    for name in ("a.woff2", "a.svg", "a.mp4", "a.wasm", "a.webp", "a.pdf",
                 "a.docx", "a.txt"):
        e.write_file("html/" + name, "x")
    e.start()
    want = {"a.woff2": "font/woff2", "a.svg": "image/svg+xml",
            "a.mp4": "video/mp4", "a.wasm": "application/wasm",
            "a.webp": "image/webp", "a.pdf": "application/pdf",
            "a.docx": "application/vnd.openxmlformats-officedocument."
                      "wordprocessingml.document",
            "a.txt": "text/plain; charset=utf-8"}
    for name, ctype in want.items():
        assert one(get(e, "/" + name)[1], "content-type") == ctype, name


# -- conditional requests


def validators(e, path):
    status, h, _ = get(e, path)
    assert status == 200
    return one(h, "etag"), one(h, "last-modified")


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def test_static_if_none_match(srv):
    etag, lm = validators(srv, "/style.css")
    for value in (etag, "W/" + etag, '"nope", ' + etag, "*"):
        status, h, body = get(srv, "/style.css", {"If-None-Match": value})
        assert status == 304, value
        assert body == b""
        assert one(h, "etag") == etag
        assert one(h, "last-modified") == lm
        assert "content-length" not in h
        assert "content-type" not in h
    status, h, body = get(srv, "/style.css", {"If-None-Match": '"other"'})
    assert status == 200 and body == b"body{}\n"
    # HEAD is like GET.
    status, h, body = get(srv, "/style.css", {"If-None-Match": etag},
                          method="HEAD")
    assert status == 304


def test_static_if_modified_since(srv):
    etag, lm = validators(srv, "/style.css")
    mtime = int(os.stat(srv.prefix / "html/style.css").st_mtime)
    for ts in (mtime, mtime + 1, mtime + 86400):
        status, h, body = get(srv, "/style.css",
                              {"If-Modified-Since": http_date(ts)})
        assert status == 304, ts
        assert body == b""
    status, h, body = get(srv, "/style.css",
                          {"If-Modified-Since": http_date(mtime - 1)})
    assert status == 200 and body == b"body{}\n"
    # Garbage is ignored.
    status, h, body = get(srv, "/style.css",
                          {"If-Modified-Since": "last tuesday"})
    assert status == 200
    # If-None-Match takes precedence over If-Modified-Since.
    status, h, body = get(srv, "/style.css",
                          {"If-None-Match": '"other"',
                           "If-Modified-Since": http_date(mtime + 10)})
    assert status == 200


def test_static_if_match_412(srv):
    etag, lm = validators(srv, "/style.css")
    assert get(srv, "/style.css", {"If-Match": etag})[0] == 200
    assert get(srv, "/style.css", {"If-Match": "*"})[0] == 200
    status, h, body = get(srv, "/style.css", {"If-Match": '"other"'})
    assert status == 412
    # Strong comparison: a weak tag does not match.
    assert get(srv, "/style.css", {"If-Match": "W/" + etag})[0] == 412


def test_static_if_unmodified_since_412(srv):
    mtime = int(os.stat(srv.prefix / "html/style.css").st_mtime)
    assert get(srv, "/style.css",
               {"If-Unmodified-Since": http_date(mtime)})[0] == 200
    assert get(srv, "/style.css",
               {"If-Unmodified-Since": http_date(mtime - 60)})[0] == 412
    # If-Match present: If-Unmodified-Since is not looked at.
    etag, _ = validators(srv, "/style.css")
    assert get(srv, "/style.css",
               {"If-Match": etag,
                "If-Unmodified-Since": http_date(mtime - 60)})[0] == 200


def test_static_if_none_match_post_412(srv):
    status, h, _ = get(srv, "/post/p.txt")
    etag = one(h, "etag")
    assert get(srv, "/post/p.txt", {"If-None-Match": etag},
               method="POST")[0] == 412
    status, h, body = get(srv, "/post/p.txt", method="POST")
    assert status == 200 and body == b"post ok\n"


def test_static_etag_off(srv):
    status, h, body = get(srv, "/noval/n.txt")
    assert status == 200
    assert "etag" not in h and "last-modified" not in h
    assert get(srv, "/noval/n.txt", {"If-None-Match": "*"})[0] == 304
    assert get(srv, "/noval/n.txt",
               {"If-Modified-Since": http_date(2 ** 31 - 1)})[0] == 200


def test_static_expires(srv):
    status, h, body = get(srv, "/cached/c.txt")
    assert status == 200
    assert one(h, "cache-control") == "max-age=3600"
    status, h, body = get(srv, "/cached/c.txt",
                          {"If-None-Match": one(h, "etag")})
    assert status == 304
    assert one(h, "cache-control") == "max-age=3600"


# -- directories


def test_static_index(srv):
    status, h, body = get(srv, "/")
    assert status == 200 and body == b"<h1>home</h1>\n"
    assert one(h, "content-type") == "text/html; charset=utf-8"
    status, h, body = get(srv, "/dir/")
    assert status == 200 and body == b"dir index\n"


def test_static_index_list(srv):
    status, h, body = get(srv, "/multi/")
    assert status == 200 and body == b"second\n"


def test_static_directory_without_index_is_403(srv):
    assert get(srv, "/dir/sub/")[0] == 403
    assert get(srv, "/noindex/")[0] == 403
    assert get(srv, "/nodir/")[0] == 404


def test_static_directory_redirect(srv):
    status, h, body = get(srv, "/dir")
    assert status == 301
    assert one(h, "location") == "/dir/"
    status, h, body = get(srv, "/dir?x=1&y=2")
    assert status == 301
    assert one(h, "location") == "/dir/?x=1&y=2"
    status, h, body = get(srv, "/a%20b")
    assert status == 301
    assert one(h, "location") == "/a%20b/"
    status, h, body = get(srv, "/a%20b/c%20d.txt")
    assert status == 200 and body == b"spaced\n"


def test_static_autoindex_html(srv):
    status, h, body = get(srv, "/listing/")
    assert status == 200
    assert one(h, "content-type") == "text/html; charset=utf-8"
    text = body.decode()
    assert "<title>Index of /listing/</title>" in text
    names = re.findall(r'<a href="([^"]*)">([^<]*)</a>', text)
    # Directories first, then names in byte order; dotfiles hidden.
    assert [n[1] for n in names] == [
        "../", "zdir/", "&lt;b&gt;&amp;&#39;x&quot;.txt", "a.txt", "b.txt"]
    assert names[2][0] == "%3Cb%3E&amp;&#39;x%22.txt"
    assert ".secret" not in text
    assert re.search(r"a\.txt</a> +\d\d-\w{3}-\d{4} \d\d:\d\d +2\n", text)
    assert re.search(r"zdir/</a> +\d\d-\w{3}-\d{4} \d\d:\d\d +-\n", text)
    # The escaped link works.
    status, h, body = get(srv, "/listing/%3Cb%3E&'x%22.txt")
    assert status == 200 and body == b"esc\n"


def test_static_autoindex_json(srv):
    status, h, body = get(srv, "/listing-json/")
    assert status == 200
    assert one(h, "content-type") == "application/json"
    items = json.loads(body)
    assert [i["name"] for i in items] == ["d", 'q"\\.txt', "x.txt"]
    assert items[0]["type"] == "directory" and "size" not in items[0]
    assert items[2] == {"name": "x.txt", "type": "file", "size": 4,
                        "mtime": items[2]["mtime"]}
    email.utils.parsedate_to_datetime(items[2]["mtime"])
    status, h, body = get(srv, "/listing-json/", method="HEAD")
    assert status == 200 and body == b""


# -- try_files


def test_static_try_files(srv):
    assert get(srv, "/spa/real.txt")[2] == b"real\n"
    assert get(srv, "/spa/sub")[2] == b"spa sub\n"
    status, h, body = get(srv, "/spa/some/client/route")
    assert status == 200 and body == b"spa shell\n"
    assert one(h, "content-type") == "text/html; charset=utf-8"
    assert get(srv, "/strict/here.txt")[2] == b"here\n"
    status, h, body = get(srv, "/strict/missing")
    assert status == 404 and body == b"custom not found\n"
    # The fallback runs through its own location.
    status, h, body = get(srv, "/fallback/missing")
    assert status == 200 and body == b"fallback\n"
    assert get(srv, "/fallback/here.txt")[2] == b"here\n"


def test_static_try_files_loop(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              /:
                static: {try_files: [$uri, /missing/x]}
    """)
    assert get(e, "/nothing")[0] == 500
    assert get(e, "/nothing")[0] == 500


# -- dotfiles, methods


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/.git/",
                                  "/dots/../.env", "/%2eenv", "/x/..%2f.env"])
def test_static_dotfiles_denied(srv, path):
    status, h, body = get(srv, path)
    assert status in (400, 404), path
    assert b"SECRET" not in body and b"[core]" not in body


def test_static_well_known_is_served(srv):
    srv.write_file("html/.well-known/acme-challenge/tok", "token\n")
    srv.write_file("html/.well-known/.hidden", "no\n")
    status, h, body = get(srv, "/.well-known/acme-challenge/tok")
    assert status == 200 and body == b"token\n"
    assert get(srv, "/.well-known/.hidden")[0] == 404
    assert get(srv, "/a/.well-known/x")[0] == 404


def test_static_dotfiles_allowed(srv):
    status, h, body = get(srv, "/dots/.hidden")
    assert status == 200 and body == b"visible when allowed\n"


def test_static_methods(srv):
    for m in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"):
        status, h, body = get(srv, "/index.html", method=m)
        assert status == 405, m
        assert one(h, "allow") == "GET, HEAD"
    status, h, body = get(srv, "/post/p.txt", method="PUT")
    assert status == 405
    assert one(h, "allow") == "GET, POST, HEAD"
    # GET brings HEAD.
    status, h, body = get(srv, "/getonly/g.txt", method="HEAD")
    assert status == 200
    status, h, body = get(srv, "/getonly/g.txt", method="POST")
    assert status == 405 and one(h, "allow") == "GET, HEAD"


# -- root, alias, implicit static


def test_static_alias(srv):
    assert get(srv, "/assets/a.txt")[2] == b"asset a\n"
    assert get(srv, "/assets/sub/b.txt")[2] == b"asset b\n"
    status, h, body = get(srv, "/assets/sub")
    assert status == 301 and one(h, "location") == "/assets/sub/"
    assert get(srv, "/one")[2] == b"asset a\n"
    assert get(srv, "/assets/../index.html")[2] == b"<h1>home</h1>\n"


def test_static_implicit(srv):
    # A location without a handler under a server with a root.
    status, h, body = get(srv, "/implicit/i.txt")
    assert status == 200 and body == b"implicit\n"
    assert "etag" in h
    # A location's own root.
    assert get(srv, "/other-root/r.txt")[2] == b"other root\n"
    # `static: false` turns it off.
    assert get(srv, "/off/o.txt")[0] == 404


def test_static_implicit_fallback(eddy):
    """No location at all matches: the server's static handling."""
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            static: {expires: 1m, index: [home.html]}
            locations:
              = /ret:
                return: 204
              /x/:
                static: {expires: 2m}
          - listen: 127.0.0.1:{port1}
            locations:
              /:
                keepalive_timeout: 5s
    """, ports=2, start=False)
    e.write_file("html/home.html", "home\n")
    e.write_file("html/x/f.txt", "x\n")
    e.start()
    status, h, body = get(e, "/")
    assert status == 200 and body == b"home\n"
    assert one(h, "cache-control") == "max-age=60"
    status, h, body = get(e, "/x/f.txt")
    assert one(h, "cache-control") == "max-age=120"
    assert get(e, "/ret")[0] == 204
    # A server without a root serves nothing.
    raw = e.raw(b"GET /home.html HTTP/1.1\r\nHost: a\r\nConnection: close"
                b"\r\n\r\n", port=e.ports[1])
    assert split_response(raw)[0] == 404


def test_static_default_config_serves_html(eddy):
    """The shape of conf/eddy.yaml: a server with a root."""
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              = /healthz:
                return: {status: 200, body: "ok\\n"}
    """, start=False)
    e.write_file("html/index.html", "welcome\n")
    e.start()
    assert get(e, "/")[2] == b"welcome\n"
    assert get(e, "/healthz")[2] == b"ok\n"


# -- precompressed


PRE = r"""
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        static: {precompressed: [br, gzip]}
      /gz/:
        static: {precompressed: [gzip]}
"""


@pytest.fixture
def pre(eddy):
    e = eddy(PRE, start=False)
    e.write_file("html/app.js", b"console.log('plain');\n")
    e.write_file("html/app.js.gz", b"GZIP-BYTES")
    e.write_file("html/app.js.br", b"BROTLI-BYTES!")
    e.write_file("html/only.css", b"plain css\n")
    e.write_file("html/only.css.gz", b"GZ-CSS")
    e.write_file("html/gz/x.txt", b"plain x\n")
    e.write_file("html/gz/x.txt.gz", b"GZ-X")
    e.write_file("html/gz/x.txt.br", b"BR-X")
    return e.start()


def test_static_precompressed(pre):
    status, h, body = get(pre, "/app.js")
    assert body == b"console.log('plain');\n"
    assert "content-encoding" not in h
    assert one(h, "vary") == "Accept-Encoding"
    plain_tag = one(h, "etag")

    status, h, body = get(pre, "/app.js", {"Accept-Encoding": "gzip"})
    assert status == 200 and body == b"GZIP-BYTES"
    assert one(h, "content-encoding") == "gzip"
    assert one(h, "content-type") == "application/javascript; charset=utf-8"
    assert one(h, "vary") == "Accept-Encoding"
    assert one(h, "content-length") == "10"
    gz_tag = one(h, "etag")

    status, h, body = get(pre, "/app.js", {"Accept-Encoding": "gzip, br"})
    assert body == b"BROTLI-BYTES!"
    assert one(h, "content-encoding") == "br"
    br_tag = one(h, "etag")
    assert len({plain_tag, gz_tag, br_tag}) == 3

    # q=0 refuses; "*" accepts what is not refused.
    status, h, body = get(pre, "/app.js",
                          {"Accept-Encoding": "br;q=0, gzip;q=0.5"})
    assert body == b"GZIP-BYTES"
    status, h, body = get(pre, "/app.js",
                          {"Accept-Encoding": "br;q=0.0, gzip;q=0"})
    assert body == b"console.log('plain');\n"
    status, h, body = get(pre, "/app.js", {"Accept-Encoding": "*"})
    assert body == b"BROTLI-BYTES!"
    status, h, body = get(pre, "/app.js",
                          {"Accept-Encoding": "*;q=1, br;q=0"})
    assert body == b"GZIP-BYTES"
    status, h, body = get(pre, "/app.js", {"Accept-Encoding": "identity"})
    assert body == b"console.log('plain');\n"

    # Only a .gz exists.
    status, h, body = get(pre, "/only.css", {"Accept-Encoding": "br, gzip"})
    assert body == b"GZ-CSS" and one(h, "content-encoding") == "gzip"
    # The configured list limits the choice.
    status, h, body = get(pre, "/gz/x.txt", {"Accept-Encoding": "br, gzip"})
    assert body == b"GZ-X"

    # Validators are per representation.
    assert get(pre, "/app.js", {"Accept-Encoding": "gzip",
                                "If-None-Match": gz_tag})[0] == 304
    assert get(pre, "/app.js", {"Accept-Encoding": "br",
                                "If-None-Match": gz_tag})[0] == 200
    status, h, body = get(pre, "/app.js", {"Accept-Encoding": "gzip",
                                           "Range": "bytes=0-3"})
    assert status == 206 and body == b"GZIP"


# -- error pages, keep-alive, pipelining


class Responses:
    """Reads successive responses from one connection, keeping what
    arrives beyond each one (pipelining)."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.buf = b""
        sock.settimeout(timeout)

    def _more(self):
        b = self.sock.recv(1 << 20)
        if not b:
            raise AssertionError("connection closed: %r" % self.buf[:200])
        self.buf += b

    def next(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status, h, _ = split_response(head + b"\r\n\r\n")
        n = 0 if head_only or status in (204, 304) else \
            int(one(h, "content-length"))
        self.buf = rest
        while len(self.buf) < n:
            self._more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, h, body


def test_static_keepalive_mixed(srv, tmp_path):
    big = os.urandom(300 * 1024)
    (srv.prefix / "html/big.bin").write_bytes(big)
    s = srv.connect()
    try:
        for path, want in (("/index.html", b"<h1>home</h1>\n"),
                           ("/big.bin", big), ("/style.css", b"body{}\n"),
                           ("/big.bin", big), ("/nope", None),
                           ("/index.html", b"<h1>home</h1>\n")):
            s.sendall(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode())
            status, h, body = split_response(read_response(s, timeout=10))
            if want is None:
                assert status == 404
            else:
                assert status == 200 and body == want, path
    finally:
        s.close()


def test_static_pipelined(srv):
    big = os.urandom(200 * 1024)
    (srv.prefix / "html/big.bin").write_bytes(big)
    s = srv.connect()
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        rs = Responses(s)
        status, h, body = rs.next()
        assert status == 200 and body == big
        status, h, body = rs.next()
        assert status == 200 and body == b"<h1>home</h1>\n"
        status, h, body = rs.next(head_only=True)
        assert status == 200 and one(h, "content-length") == str(len(big))
        status, h, body = rs.next()
        assert status == 200 and body == big
        assert rs.buf == b""
    finally:
        s.close()


# -- configuration errors


def check_conf(prefix, text):
    port = free_port()
    text = format_config(text, [port], prefix)
    (prefix / "conf").mkdir(exist_ok=True)
    (prefix / "html").mkdir(exist_ok=True)
    path = prefix / "conf/eddy.yaml"
    path.write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", path, "-t"], cwd=prefix)
    return rc, err, text


def assert_conf_error(prefix, text, needle, pattern, nth=1):
    rc, err, text = check_conf(prefix, text)
    assert rc == 1, err
    line, col = position(text, needle, nth)
    want = "eddy.yaml:%d:%d: " % (line, col)
    for ln in err.splitlines():
        if want in ln and re.search(pattern, ln):
            return
    raise AssertionError("no error at %s matching %r in:\n%s"
                         % (want, pattern, err))


def test_static_conf_unknown_key(prefix):
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              /:
                static: {autoindx: true}
    """, "autoindx", r'unknown key "autoindx" in static; did you mean '
                     r'"autoindex"\?')


@pytest.mark.parametrize("block,needle,pattern", [
    ("{autoindex: maybe}", "maybe", r"expected false, true, html or json"),
    ("{symlinks: sometimes}", "sometimes", r"expected one of: follow, "
                                           r"owner, deny"),
    ("{dotfiles: hide}", "hide", r"expected one of: deny, allow"),
    ("{precompressed: [zstd]}", "zstd", r"unknown precompressed encoding"),
    ("{try_files: [=404, $uri]}", "=404", r"must be the last item"),
    ("{try_files: [$uri, =99]}", "=99", r"invalid try_files status"),
    ("{try_files: $uri}", "$uri", r"expected a list"),
    ("{expires: soon}", "soon",
     r"expected off, a duration like 1h or -1h, epoch, max"),
    ("{index: [a/b.html]}", "[a/b", r"without \"/\""),
    ("{methods: [\"G T\"]}", "[\"G T", r"method names"),
    ("{root: nowhere}", "nowhere", r"cannot be used"),
    ("{alias: /no/such/dir/}", "/no/such", r"cannot be used"),
    ("maybe", "maybe", r"expected true, false or a mapping"),
])
def test_static_conf_bad_values(prefix, block, needle, pattern):
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              /:
                static: %s
    """ % block, needle, pattern)


def test_static_conf_conflicts(prefix):
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              /:
                return: 204
                static: true
    """, "return", r"one content handler")


def test_static_conf_root_and_alias(prefix):
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /x/:
                static: {root: html, alias: html}
    """, "{root", r'both "root" and "alias"')


def test_static_conf_needs_root(prefix):
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                static: {index: [a.html]}
    """, "{index", r"static needs a root")


def test_static_conf_alias_levels(prefix):
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            static: {alias: html}
    """, "html", r"allowed only in a location")
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              "~ ^/x":
                static: {alias: html}
    """, "{alias", r"needs a prefix or exact location")


def test_static_conf_main_keys(prefix):
    assert_conf_error(prefix, """
        mime_types: conf/none.types
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """, "conf/none", r"cannot be read")
    assert_conf_error(prefix, """
        default_type: nonsense
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """, "nonsense", r"expected a media type")
    assert_conf_error(prefix, """
        open_file_cache: {max: 10, valdi: 1s}
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """, "valdi", r"unknown key \"valdi\" in open_file_cache")
    assert_conf_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            locations:
              /:
                mime_types: conf/x.types
    """, "mime_types", r"not allowed in location")


def test_static_conf_mime_file_errors(prefix):
    (prefix / "conf").mkdir(exist_ok=True)
    (prefix / "conf/bad.types").write_text(
        "text/html html\n\n  image/png png .jpg\n")
    rc, err, text = check_conf(prefix, """
        mime_types: conf/bad.types
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """)
    assert rc == 1
    assert re.search(r"bad\.types:3:17: invalid extension", err), err
    (prefix / "conf/bad.types").write_text("text/html html\ntext/x HTML\n")
    rc, err, text = check_conf(prefix, """
        mime_types: conf/bad.types
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """)
    assert rc == 1
    assert re.search(r"bad\.types:2:8: extension \"html\" is already mapped "
                     r"to \"text/html", err), err


def test_static_conf_dump_roundtrip(prefix):
    """-T shows the static defaults, and what it prints loads again."""
    rc, err, text = check_conf(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """)
    assert rc == 0, err
    rc, out, err = run_eddy(["-p", prefix, "-c", prefix / "conf/eddy.yaml",
                             "-T"], cwd=prefix)
    assert rc == 0, err
    assert "default_type: application/octet-stream" in out
    assert "\nopen_file_cache:\n  max: 10000\n  valid: 30s\n" in out
    (prefix / "conf/dumped.yaml").write_text(out)
    rc, out, err = run_eddy(["-p", prefix, "-c", prefix / "conf/dumped.yaml",
                             "-t"], cwd=prefix)
    assert rc == 0, err
