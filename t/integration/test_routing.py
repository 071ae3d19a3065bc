"""Choosing the server (by Host) and the location (by normalised path),
config.md "Servers" and "Locations", plus error_pages and the path
normaliser of http.md."""

import pytest

from httputil import Client, assert_error_closed, exchange, get, request

SERVERS = r"""
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    names: [first.test]
    locations:
      /:
        return: {status: 200, body: "first $host"}
  - listen: 127.0.0.1:{port}
    names: [exact.example.com, also.exact.test]
    locations:
      /:
        return: {status: 200, body: "exact $host"}
  - listen: 127.0.0.1:{port}
    names: ["*.example.com"]
    locations:
      /:
        return: {status: 200, body: "lead-short $host"}
  - listen: 127.0.0.1:{port}
    names: ["*.deep.example.com"]
    locations:
      /:
        return: {status: 200, body: "lead-long $host"}
  - listen: 127.0.0.1:{port}
    names: ["www.example.*"]
    locations:
      /:
        return: {status: 200, body: "trail-short $host"}
  - listen: 127.0.0.1:{port}
    names: ["www.example.co.*"]
    locations:
      /:
        return: {status: 200, body: "trail-long $host"}
  - listen: 127.0.0.1:{port}
    names: ['~^(?<sub>[a-z]+)\.example\.org$']
    locations:
      /:
        return: {status: 200, body: "regex1 $sub"}
  - listen: 127.0.0.1:{port}
    names: ['~^([a-z]+)\.([a-z]+)\.example\.org$', '~\.org$']
    locations:
      /:
        return: {status: 200, body: "regex2 $host"}
  - listen: {address: "127.0.0.1:{port}", default: true}
    names: [default.test]
    locations:
      /:
        return: {status: 200, body: "default $host"}
"""


@pytest.fixture
def hosts(eddy):
    return eddy(SERVERS)


def answer(port, data):
    r, closed, rs = request(port, data)
    assert r.status == 200, r
    return r.text


@pytest.mark.parametrize("host,expect", [
    ("first.test", "first first.test"),
    ("exact.example.com", "exact exact.example.com"),
    ("also.exact.test", "exact also.exact.test"),
    ("EXACT.Example.COM", "exact exact.example.com"),
    ("exact.example.com:8080", "exact exact.example.com"),
    ("a.example.com", "lead-short a.example.com"),
    ("a.b.example.com", "lead-short a.b.example.com"),
    ("x.deep.example.com", "lead-long x.deep.example.com"),
    ("deep.example.com", "lead-short deep.example.com"),
    ("www.example.net", "trail-short www.example.net"),
    ("www.example.co.uk", "trail-long www.example.co.uk"),
    # leading wildcards are checked before trailing ones
    ("www.example.com", "lead-short www.example.com"),
    ("foo.example.org", "regex1 foo"),
    ("Foo.Example.ORG", "regex1 foo"),
    ("a.b.example.org", "regex2 a.b.example.org"),
    ("other.org", "regex2 other.org"),
    ("foo1.example.net", "default foo1.example.net"),
    ("example.com", "default example.com"),
    ("unknown.test", "default unknown.test"),
    ("default.test", "default default.test"),
])
def test_server_by_host(hosts, host, expect):
    assert answer(hosts.port, get("/", host=host, close=True)) == expect


def test_http10_without_host_goes_to_default(hosts):
    # $host falls back to the server's name (nginx)
    assert answer(hosts.port, b"GET / HTTP/1.0\r\n\r\n").split(" ")[0] \
        == "default"


def test_absolute_form_chooses_server(hosts):
    out = answer(hosts.port, b"GET http://exact.example.com/x HTTP/1.1\r\n"
                             b"Host: first.test\r\nConnection: close\r\n\r\n")
    assert out == "exact exact.example.com"


def test_server_chosen_per_request_on_one_connection(hosts):
    with Client(hosts.port) as c:
        for host, expect in [("first.test", "first first.test"),
                             ("a.example.com", "lead-short a.example.com"),
                             ("bar.example.org", "regex1 bar"),
                             ("nope.test", "default nope.test")]:
            c.send(get("/", host=host))
            assert c.response().text == expect


def test_first_server_without_default(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            names: [one.test]
            locations:
              /:
                return: {status: 200, body: "one"}
          - listen: 127.0.0.1:{port}
            names: [two.test]
            locations:
              /:
                return: {status: 200, body: "two"}
    """)
    assert answer(e.port, get("/", host="two.test", close=True)) == "two"
    assert answer(e.port, get("/", host="zzz.test", close=True)) == "one"
    assert answer(e.port, b"GET / HTTP/1.0\r\n\r\n") == "one"


def test_servers_on_different_ports(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port0}
            names: [same.test]
            locations:
              /:
                return: {status: 200, body: "port0"}
          - listen: 127.0.0.1:{port1}
            names: [same.test]
            locations:
              /:
                return: {status: 200, body: "port1"}
    """, ports=2)
    assert answer(e.ports[0], get("/", host="same.test", close=True)) \
        == "port0"
    assert answer(e.ports[1], get("/", host="same.test", close=True)) \
        == "port1"
    assert answer(e.ports[1], get("/", host="other", close=True)) == "port1"


# --------------------------------------------------------------------------
# locations

LOCATIONS = r"""
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /exact:
        return: {status: 200, body: "exact $uri"}
      /exact:
        return: {status: 200, body: "prefix-exact $uri"}
      /:
        return: {status: 200, body: "root $uri"}
      /a/:
        return: {status: 200, body: "a $uri"}
      /a/b/:
        return: {status: 200, body: "ab $uri"}
      ^~ /static/:
        return: {status: 200, body: "noregex $uri"}
      /long/prefix/:
        return: {status: 200, body: "longprefix $uri"}
      '~ \.php$':
        return: {status: 200, body: "php $uri"}
      '~ ^/static/.*\.css$':
        return: {status: 200, body: "css-regex $uri"}
      '~ ^/re/(\d+)/(\w+)$':
        return: {status: 200, body: "re $1 $2"}
      '~ ^/re/':
        return: {status: 200, body: "re-second $uri"}
      '~ ^/order/':
        return: {status: 200, body: "order $uri"}
      '~* \.jpg$':
        return: {status: 200, body: "jpg $uri"}
      '~ ^/named/(?<id>\d+)/(?<slug>[a-z]+)$':
        return: {status: 200, body: "named $id $slug"}
      '~ ^/long':
        return: {status: 200, body: "long-regex $uri"}
      '~ ^/caps/(a)(b)(c)(d)(e)(f)(g)(h)(i)$':
        return: {status: 200, body: "$9$8$7$6$5$4$3$2$1"}
"""


@pytest.fixture
def locs(eddy):
    return eddy(LOCATIONS)


@pytest.mark.parametrize("path,expect", [
    ("/exact", "exact /exact"),
    ("/exact?x=1", "exact /exact"),
    ("/exact/", "prefix-exact /exact/"),
    ("/exactly", "prefix-exact /exactly"),
    ("/", "root /"),
    ("/zzz", "root /zzz"),
    ("/a", "root /a"),
    ("/a/", "a /a/"),
    ("/a/x", "a /a/x"),
    ("/a/b", "a /a/b"),
    ("/a/b/", "ab /a/b/"),
    ("/a/b/c/d", "ab /a/b/c/d"),
    # a regex beats the longest (non ^~) prefix
    ("/a/b/x.php", "php /a/b/x.php"),
    ("/long/prefix/x", "long-regex /long/prefix/x"),
    # ^~ skips the regexes
    ("/static/x.css", "noregex /static/x.css"),
    ("/static/x.php", "noregex /static/x.php"),
    ("/staticx/y.css", "root /staticx/y.css"),
    # regexes in file order, captures
    ("/re/12/abc", "re 12 abc"),
    ("/re/x", "re-second /re/x"),
    ("/order/x.php", "php /order/x.php"),
    ("/order/x", "order /order/x"),
    # ~* is case-insensitive, ~ is not
    ("/img/a.JPG", "jpg /img/a.JPG"),
    ("/img/a.jpg", "jpg /img/a.jpg"),
    ("/x.PHP", "root /x.PHP"),
    ("/named/42/abc", "named 42 abc"),
    ("/named/42/ABC", "root /named/42/ABC"),
    ("/caps/abcdefghi", "ihgfedcba"),
])
def test_location_choice(locs, path, expect):
    assert answer(locs.port, get(path, close=True)) == expect


def test_location_matching_is_case_sensitive(locs):
    assert answer(locs.port, get("/A/x", close=True)) == "root /A/x"
    assert answer(locs.port, get("/EXACT", close=True)) == "root /EXACT"


def test_captures_do_not_leak_between_requests(locs):
    with Client(locs.port) as c:
        c.send(get("/re/1/one"))
        assert c.response().text == "re 1 one"
        c.send(get("/re/2/two"))
        assert c.response().text == "re 2 two"
        c.send(get("/named/7/x"))
        assert c.response().text == "named 7 x"


@pytest.mark.parametrize("path,expect", [
    ("/a/../b", "root /b"),
    ("/a/../exact", "exact /exact"),
    ("/zzz/../a/b/", "ab /a/b/"),
    ("/a/./b/", "ab /a/b/"),
    ("/a//b//c", "ab /a/b/c"),
    ("//a/", "a /a/"),
    ("/a/b/..", "a /a/"),
    ("/a/b/../", "a /a/"),
    ("/a/..", "root /"),
    ("/a/%2e%2e/exact", "exact /exact"),
    ("/a/%2E%2E/exact", "exact /exact"),
    ("/a/.%2e/exact", "exact /exact"),
    ("/a/%2e/b/", "ab /a/b/"),
    ("/%61/%62/", "ab /a/b/"),
    ("/%65xact", "exact /exact"),
    ("/re/%31%32/abc", "re 12 abc"),
    ("/x%20y", "root /x y"),
])
def test_path_normalised_before_matching(locs, path, expect):
    assert answer(locs.port, get(path, close=True)) == expect


@pytest.mark.parametrize("path", [
    "/..", "/../x", "/../../x", "/a/../../x", "/a/b/../../..",
    "/%2e%2e/x", "/%2E%2E", "/a/%2e%2e/%2e%2e/x", "/./../x", "//../x",
])
def test_path_climbing_above_root_400(locs, path):
    out, closed = exchange(locs.port, get(path))
    assert_error_closed(out, closed, 400)


def test_no_location_and_no_root_404(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /only/:
                return: {status: 200, body: "only"}
    """)
    with Client(e.port) as c:
        c.send(get("/other"))
        r = c.response()
        assert r.status == 404, r
        assert b"404" in r.body and b"Not Found" in r.body
        assert r.header("Content-Type", "").startswith("text/html")
        assert not r.closes, "a 404 need not close the connection"
        c.send(get("/only/x"))
        assert c.response().text == "only"


def test_server_without_locations_404(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
    """)
    r, _, _ = request(e.port, get("/", close=True))
    assert r.status == 404


# --------------------------------------------------------------------------
# error_pages

ERROR_PAGES = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    error_pages: {404: /err404, 410: /err410}
    locations:
      = /err404:
        return: {status: 200, body: "custom"}
      = /err410:
        return: {status: 200, body: "gone page for $request_uri"}
      /only/:
        return: {status: 200, body: "only"}
      /old/:
        return: 410
      /teapot/:
        return: 418
"""


@pytest.fixture
def errp(eddy):
    return eddy(ERROR_PAGES)


def test_error_page_for_missing_location(errp):
    r, _, _ = request(errp.port, get("/missing", close=True))
    assert r.status == 404, r
    assert r.body == b"custom"
    assert r.header("Content-Length") == "6"


def test_error_page_for_return_status(errp):
    r, _, _ = request(errp.port, get("/old/thing?x=1", close=True))
    assert r.status == 410, r
    assert r.text == "gone page for /old/thing?x=1"


def test_error_page_not_configured_status(errp):
    r, _, _ = request(errp.port, get("/teapot/", close=True))
    assert r.status == 418
    assert b"418" in r.body


def test_error_page_location_directly(errp):
    r, _, _ = request(errp.port, get("/err404", close=True))
    assert r.status == 200 and r.body == b"custom"


def test_error_page_keepalive_and_head(errp):
    with Client(errp.port) as c:
        c.send(get("/missing", method="HEAD"))
        r = c.response(head_request=True)
        assert r.status == 404 and r.header("Content-Length") == "6"
        c.send(get("/missing"))
        r = c.response()
        assert r.status == 404 and r.body == b"custom"
        c.send(get("/only/"))
        assert c.response().body == b"only"


def test_error_page_inherited_from_main(eddy):
    e = eddy("""
        workers: 1
        error_pages: {404: /nf}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              = /nf:
                return: {status: 200, body: "main-level page"}
    """)
    r, _, _ = request(e.port, get("/nothing", close=True))
    assert r.status == 404 and r.body == b"main-level page"


def test_server_name_capture_with_regex_location(eddy):
    """A named capture of the server name stays set when a regex location
    then matches (nginx: server_name captures are variables)."""
    e = eddy(r"""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            names: ['~^(?<sub>[a-z]+)\.example\.org$']
            locations:
              '~ ^/item/(\d+)$':
                return: {status: 200, body: "$sub $1"}
              /:
                return: {status: 200, body: "$sub"}
    """)
    assert answer(e.port, get("/", host="abc.example.org", close=True)) \
        == "abc"
    assert answer(e.port, get("/item/7", host="abc.example.org",
                              close=True)) == "abc 7"
