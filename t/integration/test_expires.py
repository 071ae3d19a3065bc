"""static.expires (modules-2.md "expires"): the four rows of the table
(a duration and 0, a negative one, epoch, max), by_type with exact and
whole types and a default, only the statuses nginx gives them to, the
headers module's `set` winning, proxied responses left alone, and -t
errors for bad values."""

import email.utils
import time

import pytest

from conftest import check_config_error

EPOCH = "Thu, 01 Jan 1970 00:00:01 GMT"
MAX = "Thu, 31 Dec 2037 23:55:55 GMT"

CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    root: html
    error_pages: {404: /404.html}
    static: {expires: 2h}
    locations:
      /hour/:
        static: {expires: 1h}
      /zero/:
        static: {expires: 0}
      /past/:
        static: {expires: -1h}
      /epoch/:
        static: {expires: epoch}
      /max/:
        static: {expires: max}
      /off/:
        static: {expires: off}
      /typed/:
        static:
          expires:
            by_type: {text/html: epoch, "image/*": 30d, IMAGE/SVG+XML: max}
            default: 1m
      /typed-nodefault/:
        static: {expires: {by_type: {text/css: 1h}}}
      /setwins/:
        static: {expires: 1h}
        headers: {set: {Cache-Control: private}}
      /list/:
        static: {expires: 1h, autoindex: true}
      = /404.html:
        static: {expires: 1h}
      /proxied/:
        proxy: {pass: "http://127.0.0.1:{port1}/upstream/"}
      /proxied-hour/:
        proxy: {pass: "http://127.0.0.1:{port1}/hour/"}
      /upstream/:
        return: {status: 200, body: "up\n"}
"""


@pytest.fixture
def srv(eddy):
    e = eddy(CONFIG, ports=2, start=False)
    # The second port is the same server, for the proxied case.
    e.write_config(CONFIG.replace("listen: 127.0.0.1:{port}",
                                  "listen: [127.0.0.1:{port}, "
                                  "127.0.0.1:{port1}]"))
    for d in ("hour", "zero", "past", "epoch", "max", "off", "typed",
              "typed-nodefault", "setwins", "list", "list/sub"):
        e.write_file("html/%s/a.txt" % d, "a\n")
    e.write_file("html/typed/p.html", "<p>\n")
    e.write_file("html/typed/i.png", b"\x89PNG")
    e.write_file("html/typed/v.svg", "<svg/>")
    e.write_file("html/typed-nodefault/s.css", "b{}")
    e.write_file("html/404.html", "not here\n")
    e.write_file("html/plain.txt", "p\n")
    return e.start()


def date(h):
    return email.utils.parsedate_to_datetime(h).timestamp()


def check_relative(r, seconds):
    now = time.time()
    assert r.header("Cache-Control") == "max-age=%d" % seconds
    assert abs(date(r.header("Expires")) - (now + seconds)) < 5, r.headers


def test_the_four_rows(srv):
    check_relative(srv.get("/hour/a.txt"), 3600)
    check_relative(srv.get("/zero/a.txt"), 0)
    r = srv.get("/past/a.txt")
    assert r.header("Cache-Control") == "no-cache"
    assert abs(date(r.header("Expires")) - (time.time() - 3600)) < 5
    r = srv.get("/epoch/a.txt")
    assert (r.header("Expires"), r.header("Cache-Control")) \
        == (EPOCH, "no-cache")
    r = srv.get("/max/a.txt")
    assert (r.header("Expires"), r.header("Cache-Control")) \
        == (MAX, "max-age=315360000")
    r = srv.get("/off/a.txt")
    assert r.status == 200
    assert r.header("Expires") is None and r.header("Cache-Control") is None
    # Inherited from the server's static block.
    check_relative(srv.get("/plain.txt"), 7200)
    # One of each, never twice.
    r = srv.get("/hour/a.txt")
    assert len(r.headers.get_all("Expires")) == 1
    assert len(r.headers.get_all("Cache-Control")) == 1


def test_by_type(srv):
    r = srv.get("/typed/p.html")
    assert r.header("Content-Type").startswith("text/html")
    assert (r.header("Expires"), r.header("Cache-Control")) \
        == (EPOCH, "no-cache")
    check_relative(srv.get("/typed/i.png"), 30 * 86400)
    # An exact type wins over its whole type, in any case.
    r = srv.get("/typed/v.svg")
    assert r.header("Content-Type") == "image/svg+xml"
    assert r.header("Expires") == MAX
    check_relative(srv.get("/typed/a.txt"), 60)
    check_relative(srv.get("/typed-nodefault/s.css"), 3600)
    r = srv.get("/typed-nodefault/a.txt")
    assert r.header("Expires") is None and r.header("Cache-Control") is None


def test_statuses(srv):
    # 304 and 206 keep them.
    r = srv.get("/hour/a.txt")
    etag = r.header("ETag")
    r = srv.get("/hour/a.txt", headers={"If-None-Match": etag})
    assert r.status == 304
    check_relative(r, 3600)
    r = srv.get("/hour/a.txt", headers={"Range": "bytes=0-0"})
    assert r.status == 206
    check_relative(r, 3600)
    # 301 to the directory's slash form.
    r = srv.get("/list/sub")
    assert r.status == 301
    check_relative(r, 3600)
    r = srv.get("/list/")
    assert r.status == 200
    check_relative(r, 3600)
    # Errors do not: 404 (its page is served by static with expires),
    # 405, 412, 416.
    r = srv.get("/hour/missing.txt")
    assert r.status == 404 and r.body == b"not here\n"
    assert r.header("Expires") is None and r.header("Cache-Control") is None
    r = srv.request("POST", "/hour/a.txt", body=b"x")
    assert r.status == 405
    assert r.header("Expires") is None
    r = srv.get("/hour/a.txt", headers={"If-Match": '"nope"'})
    assert r.status == 412
    assert r.header("Expires") is None


def test_headers_set_wins(srv):
    r = srv.get("/setwins/a.txt")
    assert r.headers.get_all("Cache-Control") == ["private"]
    # Expires, which set leaves alone, stays.
    assert abs(date(r.header("Expires")) - (time.time() + 3600)) < 5


def test_not_for_proxied_responses(srv):
    # The server's static block says expires: 2h; a proxied response
    # keeps what the upstream sent (here eddy itself on its second
    # port): nothing, or the upstream's own 1h.
    r = srv.get("/proxied/x")
    assert r.status == 200 and r.body == b"up\n"
    assert r.header("Expires") is None and r.header("Cache-Control") is None
    r = srv.get("/proxied-hour/a.txt")
    assert r.status == 200 and r.body == b"a\n"
    check_relative(r, 3600)


@pytest.mark.parametrize("value,needle,pattern", [
    ("soon", "soon", r"expected off, a duration"),
    ("--1h", "--1h", r"expected off, a duration"),
    ("-", "-", r"expected off, a duration"),
    ("11000d", "11000d", r"expected off, a duration"),
    ("[1h]", "[1h", r"expected off, a duration"),
    ("{by_type: {text/html: never}}", "never",
     r'invalid expires for "text/html"'),
    ("{by_type: {html: 1h}}", "html:", r'invalid media type "html"'),
    ("{by_type: {\"text/*x\": 1h}}", "\"text/", r"invalid media type"),
    ("{by_type: [1h]}", "[1h", r"expected a mapping of media types"),
    ("{default: soon}", "soon", r"invalid expires.default"),
    ("{by_typ: {}}", "by_typ", r'unknown key "by_typ" in expires'),
    ("{by_type: {text/css: 1h, TEXT/CSS: 2h}}", "TEXT/CSS",
     r'"TEXT/CSS" twice'),
])
def test_config_errors(prefix, value, needle, pattern):
    text = """
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        static: {expires: %s}
""" % value
    check_config_error(prefix, text, needle, pattern,
                       nth=text.count(needle))
