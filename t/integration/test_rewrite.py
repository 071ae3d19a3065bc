"""rewrite (modules-2.md): server rules before the location is chosen,
location rules after; `last` chooses again, `break` stays (the proxy
sends the new URI re-encoded), redirects with the query, query rules,
results normalised as request paths, a cycle is a 500 with its log line,
and the -t errors."""

import re

from conftest import check_config_error, wait_for
from httputil import request, get
from proxy_backend import Backend

CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    names: [rw.test]
    root: html
    rewrite:
      - {regex: "^/srv/(.*)$", replacement: /new/$1}
      - {regex: "^/moved$", replacement: /new/moved.txt, flag: permanent}
    locations:
      /:
        static: {}
      /old/:
        rewrite:
          - {regex: "^/old/(.*)$", replacement: /new/$1, flag: last}
        return: {status: 200, body: "old location\n"}
      /new/:
        return: {status: 200, body: "new $uri args=[$args]\n"}
      /stay/:
        rewrite:
          - {regex: "^/stay/(.*)$", replacement: /new/$1, flag: break}
        return: {status: 200, body: "stayed $uri\n"}
      /chain/:
        rewrite:
          - {regex: "^/chain/a/(.*)$", replacement: /chain/b/$1}
          - {regex: "^/chain/b/(.*)$", replacement: /new/chained-$1}
      /red/:
        rewrite:
          - {regex: "^/red/tmp/(.*)$", replacement: /dest/$1, flag: redirect}
          - {regex: "^/red/perm/(?<rest>.*)$", replacement: /dest/$rest,
             flag: permanent}
          - {regex: "^/red/abs/(.*)$", replacement: "https://$host/x/$1"}
          - {regex: "^/red/scheme/(.*)$", replacement: "$scheme://other.test/$1"}
          - {regex: "^/red/noq/(.*)$", replacement: "/dest/$1?", flag: redirect}
      /q/:
        rewrite:
          - {regex: "^/q/add/(.*)$", replacement: "/new/a?x=$1", flag: last}
          - {regex: "^/q/drop/(.*)$", replacement: "/new/d/$1?", flag: last}
          - {regex: "^/q/repl/(.*)$", replacement: "/new/r?y=$1?", flag: last}
          - {regex: "^/q/keep/(.*)$", replacement: "/new/k/$1", flag: last}
      /loop1/:
        rewrite: [{regex: "^/loop1/(.*)$", replacement: /loop2/$1, flag: last}]
      /loop2/:
        rewrite: [{regex: "^/loop2/(.*)$", replacement: /loop1/$1, flag: last}]
      /up/:
        rewrite: [{regex: "^/up/(.*)$", replacement: "/a/../../$1", flag: last}]
      /notpath/:
        rewrite: [{regex: "^/notpath/", replacement: "$arg_to", flag: last}]
      /crlf/:
        rewrite: [{regex: "^/crlf/([^/]*)", replacement: "/new/$1", flag: last}]
"""


def start(eddy):
    e = eddy(CONFIG)
    e.write_file("html/index.html", "index\n")
    return e


def fetch(e, target):
    r, _, _ = request(e.port, get(target, host="rw.test", close=True))
    return r


def test_last_chooses_the_location_again(eddy):
    e = start(eddy)
    r = fetch(e, "/old/page?k=1")
    assert r.status == 200
    assert r.body == b"new /new/page args=[k=1]\n"


def test_server_rules_run_before_the_location(eddy):
    e = start(eddy)
    r = fetch(e, "/srv/x")
    assert r.status == 200 and r.body == b"new /new/x args=[]\n"
    r = fetch(e, "/moved")
    assert r.status == 301
    assert r.header("Location") == "/new/moved.txt"


def test_break_stays_and_no_flag_chains(eddy):
    e = start(eddy)
    r = fetch(e, "/stay/x")
    assert r.status == 200 and r.body == b"stayed /new/x\n"
    r = fetch(e, "/chain/a/z")
    assert r.status == 200 and r.body == b"new /new/chained-z args=[]\n"


def test_redirects(eddy):
    e = start(eddy)
    r = fetch(e, "/red/tmp/f?k=1")
    assert r.status == 302 and r.header("Location") == "/dest/f?k=1"
    r = fetch(e, "/red/perm/g")
    assert r.status == 301 and r.header("Location") == "/dest/g"
    r = fetch(e, "/red/abs/h")
    assert r.status == 302
    assert r.header("Location") == "https://rw.test/x/h"
    r = fetch(e, "/red/scheme/i")
    assert r.status == 302
    assert r.header("Location") == "http://other.test/i"
    r = fetch(e, "/red/noq/j?k=1")
    assert r.status == 302 and r.header("Location") == "/dest/j"
    # $1 is decoded ($uri): Location is %-encoded again on the way out.
    r = fetch(e, "/red/tmp/a%20b%0Bc")
    assert r.status == 302 and r.header("Location") == "/dest/a%20b%0Bc"


def test_query_rules(eddy):
    e = start(eddy)
    r = fetch(e, "/q/add/1?k=2")
    assert r.body == b"new /new/a args=[x=1&k=2]\n"
    r = fetch(e, "/q/add/1")
    assert r.body == b"new /new/a args=[x=1]\n"
    r = fetch(e, "/q/drop/1?k=2")
    assert r.body == b"new /new/d/1 args=[]\n"
    r = fetch(e, "/q/repl/1?k=2")
    assert r.body == b"new /new/r args=[y=1]\n"
    r = fetch(e, "/q/keep/1?k=2")
    assert r.body == b"new /new/k/1 args=[k=2]\n"
    # A capture's bytes a query cannot hold are %-encoded.
    r = fetch(e, "/q/add/a%20b%26c?k=2")
    assert r.body == b"new /new/a args=[x=a%20b&c&k=2]\n"


def test_loop_is_500_with_its_log_line(eddy):
    e = start(eddy)
    r = fetch(e, "/loop1/x")
    assert r.status == 500
    line = re.compile(
        r'\[error\] \d+#\d+: rewrite or internal redirection cycle while '
        r'redirecting to "/loop[12]/x", client: 127\.0\.0\.1, server: '
        r'rw\.test, request: "GET /loop1/x HTTP/1\.1", host: "rw\.test"$',
        re.M)
    assert wait_for(lambda: line.search(e.error_log), 5), e.error_log
    # The server goes on.
    assert fetch(e, "/old/y").status == 200


def test_results_are_paths(eddy):
    e = start(eddy)
    assert fetch(e, "/up/x").status == 400
    r = fetch(e, "/notpath/?to=abc")
    assert r.status == 500
    assert wait_for(lambda: 'rewrite made "abc", which is not a path'
                    in e.error_log, 5), e.error_log
    # CR LF decoded from the target never reach a URI.
    assert fetch(e, "/crlf/x%0D%0AX:%20y").status == 500
    assert fetch(e, "/notpath/?to=/new/ok").body == \
        b"new /new/ok args=[to=/new/ok]\n"


def test_break_proxies_the_new_uri(eddy):
    with Backend() as b:
        e = eddy("""
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /api/:
                    rewrite:
                      - {regex: "^/api/(.*)$", replacement: "/v2/$1", flag: break}
                    proxy: {pass: "http://127.0.0.1:%d/ignored/"}
                  /plain/:
                    proxy: {pass: "http://127.0.0.1:%d/base/"}
            """ % (b.port, b.port))
        r, _, _ = request(e.port, get("/api/a%20b/c%3F?k=1&z", close=True))
        assert r.status == 200
        r, _, _ = request(e.port, get("/plain/x%20y?k=1", close=True))
        assert r.status == 200
        targets = [q.target for q in b.requests]
        # The whole new URI, re-encoded, whatever pass's path; the query
        # goes with it.
        assert targets[0] == "/v2/a%20b/c%3F?k=1&z", targets
        # Without a rewrite the location's prefix is replaced as before.
        assert targets[1] == "/base/x%20y?k=1", targets


BAD = """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        rewrite:
          - %s
"""


def test_config_errors(prefix):
    check_config_error(prefix, BAD % '{regex: "^/(a", replacement: /b}',
                       '"^/(a"', r'invalid regex "\^/\(a": missing closing '
                       r'parenthesis at offset 4')
    check_config_error(prefix, BAD % '{regex: "^/(a)", replacement: /b/$2}',
                       '$2}', r'"\$2" but rewrite regex "\^/\(a\)" has 1 '
                       r'capture group')
    check_config_error(prefix,
                       BAD % '{regex: "^/(?<x>a)", replacement: /b/$y}',
                       '$y}', r'unknown variable "\$y"; did you mean '
                       r'"\$x"\?')
    check_config_error(prefix,
                       BAD % '{regex: "^/a", replacement: /b/$nosuch_var}',
                       '$nosuch_var}', r'unknown variable "\$nosuch_var"')
    check_config_error(prefix,
                       BAD % '{regex: "^/a", replacement: /b, flag: final}',
                       'final', r'expected one of: none, last, break, '
                       r'redirect, permanent')
    check_config_error(prefix, BAD % '{regex: "^/a", replacement: ""}',
                       '""', r'expected a non-empty replacement')
    check_config_error(prefix, BAD % '{regex: "^/a"}', '{regex',
                       r'expected "replacement" in a rewrite rule')
    check_config_error(prefix, BAD % '{regex: "^/a", replacement: b}',
                       'b}', r"an internal replacement must start with '/'")


def test_nginx_if_points_to_maps(prefix):
    check_config_error(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        if: "($http_x = 1)"
        return: 200
""", "if:", r'unknown key "if" in location "/"; eddy has no if: a map '
       r'chooses a value by a variable \(maps\), rewrite rules match the URI')
