"""Block-valued keys (config.md: `static`, `gzip`, `listen` items,
`limit_req`, `proxy`, `open_file_cache`, `tls`, `events`, an upstream's
`health_check` and `servers` items) go through the key tables like
any other key: a misspelt key inside a block gets "did you mean" at its
own file:line:col, and blocks are inherited main -> server -> location
as config.md says (field by field for static and gzip, whole for
limit_req)."""

import gzip
import re

import pytest

from conftest import format_config, free_port, position, run_eddy

UPSTREAM = """
upstreams:
  app:
    servers: [127.0.0.1:9]
"""


def check_exact(prefix, text, needle, message):
    """-t fails with exactly "eddy.yaml:L:C: message" at needle."""
    text = format_config(text, [free_port()], prefix)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)
    assert rc == 1, err
    line, col = position(text, needle)
    want = "eddy.yaml:%d:%d: %s" % (line, col, message)
    assert any(ln.endswith(want) for ln in err.splitlines()), \
        "no %r in:\n%s" % (want, err)


# A misspelt key in each kind of block, with the block written as a flow
# mapping and as a block mapping.
@pytest.mark.parametrize("snippet,needle,message", [
    ("static: {autoindx: true}", "autoindx",
     'unknown key "autoindx" in static; did you mean "autoindex"?'),
    ("static:\n          precompresed: [gzip]", "precompresed",
     'unknown key "precompresed" in static; did you mean "precompressed"?'),
    ("gzip: {levl: 5}", "levl",
     'unknown key "levl" in gzip; did you mean "level"?'),
    ("gzip:\n          min_lenght: 10", "min_lenght",
     'unknown key "min_lenght" in gzip; did you mean "min_length"?'),
    ("limit_req: {rate: 1r/s, brust: 5}", "brust",
     'unknown key "brust" in limit_req; did you mean "burst"?'),
    ("limit_req:\n          rate: 1r/s\n          stauts: 503", "stauts",
     'unknown key "stauts" in limit_req; did you mean "status"?'),
    ("proxy: {pass: app, read_timout: 1s}", "read_timout",
     'unknown key "read_timout" in proxy; did you mean "read_timeout"?'),
])
def test_regress_block_key_did_you_mean_in_location(prefix, snippet, needle,
                                                    message):
    check_exact(prefix, UPSTREAM + """
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        %s
""" % snippet, needle, message)


@pytest.mark.parametrize("listen,needle,message", [
    ("[{address: \"127.0.0.1:{port}\", defualt: true}]", "defualt",
     'unknown key "defualt" in listen; did you mean "default"?'),
    ("\n      - adress: \"127.0.0.1:{port}\"", "adress",
     'unknown key "adress" in listen; did you mean "address"?'),
    ("[\"127.0.0.1:{port}\", {address: \"127.0.0.1:1\", backlg: 9}]",
     "backlg", 'unknown key "backlg" in listen; did you mean "backlog"?'),
])
def test_regress_listen_item_did_you_mean(prefix, listen, needle, message):
    check_exact(prefix, """
servers:
  - listen: %s
    locations:
      /:
        return: 204
""" % listen, needle, message)


@pytest.mark.parametrize("cache,needle,message", [
    ("{max: 10, vaild: 1s}", "vaild",
     'unknown key "vaild" in open_file_cache; did you mean "valid"?'),
    ("\n  mx: 10", "mx",
     'unknown key "mx" in open_file_cache; did you mean "max"?'),
])
def test_regress_open_file_cache_did_you_mean(prefix, cache, needle,
                                              message):
    check_exact(prefix, """
open_file_cache: %s
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: 204
""" % cache, needle, message)


# The blocks of the server's TLS, the process's events and the upstream
# groups: a misspelt key is named at its own position with the closest
# key, and -t fails (exit status 1, checked by check_exact).
@pytest.mark.parametrize("text,needle,message", [
    ("""
servers:
  - listen: 127.0.0.1:{port}
    tls: {certificate: a.pem, key: a.key, cipher: HIGH}
""", "cipher", 'unknown key "cipher" in tls; did you mean "ciphers"?'),
    ("""
servers:
  - listen: 127.0.0.1:{port}
    tls:
      certficate: a.pem
      key: a.key
""", "certficate",
     'unknown key "certficate" in tls; did you mean "certificate"?'),
    ("""
events: {max_connection: 100}
servers:
  - listen: 127.0.0.1:{port}
""", "max_connection",
     'unknown key "max_connection" in events; did you mean '
     '"max_connections"?'),
    ("""
events:
  acept: reuseport
servers:
  - listen: 127.0.0.1:{port}
""", "acept", 'unknown key "acept" in events; did you mean "accept"?'),
    ("""
upstreams:
  app:
    servers: [127.0.0.1:9]
    health_check: {path: /h, intervl: 1s}
servers:
  - listen: 127.0.0.1:{port}
""", "intervl",
     'unknown key "intervl" in health_check; did you mean "interval"?'),
    ("""
upstreams:
  app:
    servers: [127.0.0.1:9]
    health_check:
      expect_stauts: 200
servers:
  - listen: 127.0.0.1:{port}
""", "expect_stauts",
     'unknown key "expect_stauts" in health_check; did you mean '
     '"expect_status"?'),
    ("""
upstreams:
  app:
    servers: ["127.0.0.1:9", {address: "127.0.0.1:10", wieght: 2}]
servers:
  - listen: 127.0.0.1:{port}
""", "wieght", 'unknown key "wieght" in servers; did you mean "weight"?'),
    ("""
upstreams:
  app:
    servers:
      - adress: 127.0.0.1:9
servers:
  - listen: 127.0.0.1:{port}
""", "adress", 'unknown key "adress" in servers; did you mean "address"?'),
])
def test_regress_tls_events_upstream_block_did_you_mean(prefix, text, needle,
                                                       message):
    check_exact(prefix, text, needle, message)


@pytest.mark.parametrize("text,needle,message", [
    # Far from every key: the block's keys are listed.
    ("""
events: {colour: blue}
servers:
  - listen: 127.0.0.1:{port}
""", "colour", 'unknown key "colour" in events; expected max_connections, '
     'accept, backlog or handover'),
    # A value error names "block.key" at the value.
    ("""
upstreams:
  app:
    servers: [127.0.0.1:9]
    health_check: {fails: 0}
servers:
  - listen: 127.0.0.1:{port}
""", "0}", 'invalid value for "health_check.fails": "0" is out of range: '
     'expected an integer from 1 to 1000'),
    ("""
upstreams:
  app:
    servers: [{address: "127.0.0.1:9", weight: 0}]
servers:
  - listen: 127.0.0.1:{port}
""", "0}", 'invalid value for "servers.weight": "0" is out of range: '
     'expected an integer from 1 to 1000'),
    ("""
events: {backlog: 0}
servers:
  - listen: 127.0.0.1:{port}
""", "0}", 'invalid value for "events.backlog": "0" is out of range: '
     'expected an integer from 1 to 65535'),
    # A scalar where a mapping is wanted.
    ("""
upstreams:
  app:
    servers: [127.0.0.1:9]
    health_check: yes
servers:
  - listen: 127.0.0.1:{port}
""", "yes", 'invalid value for "health_check": expected a mapping for '
     'health_check'),
    ("""
servers:
  - listen: 127.0.0.1:{port}
    tls: on
""", "on", 'invalid value for "tls": expected a mapping with certificate '
     'and key'),
])
def test_regress_tls_events_upstream_block_messages(prefix, text, needle,
                                                    message):
    check_exact(prefix, text, needle, message)


def test_health_check_null_takes_defaults(prefix):
    """`health_check:` with no value is a check with every default."""
    text = format_config("""
upstreams:
  app:
    servers: [127.0.0.1:9]
    health_check:
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        proxy: {pass: app}
""", [free_port()], prefix)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)
    assert rc == 0, err


# A block at main or server level is checked the same way.
@pytest.mark.parametrize("level", ["main", "server"])
def test_regress_block_key_did_you_mean_above_location(prefix, level):
    block = "gzip: {enabeld: true}"
    text = """
%s
servers:
  - listen: 127.0.0.1:{port}
    %s
    locations:
      /:
        return: 204
""" % (block if level == "main" else "", block if level == "server" else "")
    check_exact(prefix, text, "enabeld",
                'unknown key "enabeld" in gzip; did you mean "enabled"?')


# Far from every key: the keys of the block are listed.
@pytest.mark.parametrize("snippet,needle,message", [
    ("limit_req: {rate: 1r/s, zone: x}", "zone",
     'unknown key "zone" in limit_req; expected key, rate, burst or status'),
    ("static: {colour: blue}", "colour",
     'unknown key "colour" in static; expected root, alias, index, '
     'autoindex, etag, last_modified, ranges, precompressed, try_files, '
     'expires, dotfiles, symlinks or methods'),
])
def test_regress_block_unknown_key_lists_keys(prefix, snippet, needle,
                                             message):
    check_exact(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        %s
""" % snippet, needle, message)


def test_regress_block_value_error_names_block_key(prefix):
    """A bad value inside a block names "block.key" at the value."""
    check_exact(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    root: html
    gzip: {level: 12}
    locations:
      /:
        return: 204
""", "12}", 'invalid value for "gzip.level": "12" is out of range: '
             'expected an integer from 1 to 9')


# Inheritance.

TEXT = b"".join(b"line %d of a compressible text file\n" % i
                for i in range(200))


def test_gzip_block_merged_field_by_field(eddy):
    """types from main, min_length from the server, enabled from the
    location: each block takes what it leaves unset from the one above."""
    e = eddy("""
workers: 1
gzip: {types: [text/plain], level: 1}
servers:
  - listen: 127.0.0.1:{port}
    root: html
    gzip: {min_length: 5000}
    locations:
      /on/:
        gzip: true
      /:
        static: {}
""")
    e.write_file("html/on/big.txt", TEXT)
    e.write_file("html/on/small.txt", b"x" * 100)
    e.write_file("html/on/page.html", TEXT)
    e.write_file("html/big.txt", TEXT)
    ae = {"Accept-Encoding": "gzip"}
    r = e.get("/on/big.txt", headers=ae)
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body) == TEXT
    # min_length (server) leaves the small file alone.
    r = e.get("/on/small.txt", headers=ae)
    assert r.header("Content-Encoding") is None and r.body == b"x" * 100
    # types (main) leave text/html alone.
    r = e.get("/on/page.html", headers=ae)
    assert r.header("Content-Encoding") is None and r.body == TEXT
    # Not enabled where no level says so.
    r = e.get("/big.txt", headers=ae)
    assert r.header("Content-Encoding") is None and r.body == TEXT


def test_static_block_merged_field_by_field(eddy):
    """index from main, autoindex from the server, etag: false from the
    location; `static: false` at a server turns its implicit static off
    but a location's own block still serves."""
    e = eddy("""
workers: 1
static: {index: [start.html]}
servers:
  - listen: 127.0.0.1:{port0}
    root: html
    static: {autoindex: json}
    locations:
      /own/:
        static: {etag: false}
  - listen: 127.0.0.1:{port1}
    root: html
    static: false
    locations:
      /own/:
        static: {}
      /:
        headers: {add: {X-A: b}}
""", ports=2)
    e.write_file("html/own/start.html", b"start\n")
    e.write_file("html/own/list/a.txt", b"a\n")
    e.write_file("html/other.txt", b"o\n")
    p0, p1 = e.ports
    r = e.request("GET", "/own/", port=p0)
    assert r.status == 200 and r.body == b"start\n"
    assert r.header("ETag") is None
    r = e.request("GET", "/own/list/", port=p0)
    assert r.status == 200
    assert re.search(rb'"a\.txt"', r.body), r.body
    # The server's own level: index from main, etag on by default.
    r = e.request("GET", "/other.txt", port=p0)
    assert r.status == 200 and r.header("ETag") is not None
    # static: false at the server: no implicit static...
    r = e.request("GET", "/other.txt", port=p1)
    assert r.status == 404
    # ...but a location's own block serves, with main's index.
    r = e.request("GET", "/own/", port=p1)
    assert r.status == 200 and r.body == b"start\n"


def test_limit_req_block_inherited_whole(eddy):
    """A location without limit_req takes its server's block; a location
    with its own replaces it whole (no field of the server's is kept)."""
    e = eddy("""
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    limit_req: {rate: 1r/m, burst: 0, status: 503}
    locations:
      /inherit/:
        return: 204
      /own/:
        limit_req: {rate: 1r/m, burst: 1}
        return: 204
""")
    assert e.get("/inherit/").status == 204
    assert e.get("/inherit/").status == 503
    # Own block: burst 1, and status back to its default (429).
    assert e.get("/own/").status == 204
    assert e.get("/own/").status == 204
    assert e.get("/own/").status == 429
