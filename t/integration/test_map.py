"""map (modules-2.md): $NAME from the first matching entry (exact keys
case-insensitive, hostnames' longest wildcard, regexes in order with
their captures), else the default; computed when a request first uses
it and kept for that request; usable wherever variables are (proxy
backends, rewrite, logs, headers); the -t errors."""

from conftest import check_config_error, wait_for
from httputil import request, get
from proxy_backend import Backend

CONFIG = r"""
workers: 1
error_log: logs/error.log
maps:
  api:
    source: $http_x_api_version
    default: v1
    entries:
      "2": v2
      Three: v3
      "~*^beta-(?<n>\\d+)$": beta-$n
      "~^(\\d+)\\.(\\d+)$": "minor-$2-of-$1"
  site:
    source: $host
    hostnames: true
    default: none
    entries:
      example.com: exact
      .example.com: dot-wild
      "*.deep.example.com": star-wild
      "www.example.*": tail-wild
  late:
    source: $bytes_sent
    default: nonzero
    entries: {"0": zero}
  kept:
    source: $bytes_sent
    default: nonzero
    entries: {"0": zero}
  target:
    source: $api
    default: /other
    entries: {v2: /two}
servers:
  - listen: 127.0.0.1:{port}
    access_log: {path: logs/access.log, format: "$uri late=$late kept=$kept"}
    locations:
      /api:
        return: {status: 200, body: "api=$api\n"}
      /site:
        return: {status: 200, body: "site=$site\n"}
      /kept:
        headers: {set: {X-Kept: $kept}}
        return: {status: 200, body: "ok\n"}
      /go/:
        rewrite: [{regex: "^/go/", replacement: "$target", flag: last}]
      /two:
        return: {status: 200, body: "two $api\n"}
      /other:
        return: {status: 200, body: "other $api\n"}
"""


def fetch(e, target, host="localhost", headers=()):
    extra = "".join("%s: %s\r\n" % h for h in headers)
    data = ("GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
            % (target, host, extra)).encode()
    r, _, _ = request(e.port, data)
    return r


def api(e, value=None):
    headers = [("X-API-Version", value)] if value is not None else []
    return fetch(e, "/api", headers=headers).body.decode()


def test_exact_keys_case_insensitive_and_default(eddy):
    e = eddy(CONFIG)
    assert api(e, "2") == "api=v2\n"
    assert api(e, "three") == "api=v3\n"
    assert api(e, "THREE") == "api=v3\n"
    assert api(e, "4") == "api=v1\n"
    assert api(e) == "api=v1\n"


def test_regex_keys_with_captures_in_order(eddy):
    e = eddy(CONFIG)
    assert api(e, "BETA-17") == "api=beta-17\n"
    assert api(e, "3.9") == "api=minor-9-of-3\n"
    # "~" is case-sensitive: no match, the default.
    assert api(e, "x3.9") == "api=v1\n"


def test_hostnames(eddy):
    e = eddy(CONFIG)

    def site(host):
        return fetch(e, "/site", host=host).body.decode()

    assert site("example.com") == "site=exact\n"
    assert site("EXAMPLE.COM.") == "site=exact\n"
    assert site("a.example.com") == "site=dot-wild\n"
    # The longest wildcard wins.
    assert site("x.deep.example.com") == "site=star-wild\n"
    assert site("deep.example.com") == "site=dot-wild\n"
    assert site("www.example.org") == "site=tail-wild\n"
    assert site("example.org") == "site=none\n"


def test_a_map_choosing_a_rewrite_target(eddy):
    e = eddy(CONFIG)
    r = fetch(e, "/go/", headers=[("X-API-Version", "2")])
    assert r.body == b"two v2\n"
    r = fetch(e, "/go/")
    assert r.body == b"other v1\n"


def test_lazy_and_kept_per_request(eddy):
    """$late is used only by the log line: it is computed then, after the
    response went out ($bytes_sent is no longer 0). $kept is first used by
    the response head (0 bytes sent yet) and the log line gets the value
    kept from then, not a new one."""
    e = eddy(CONFIG)
    r = fetch(e, "/kept")
    assert r.status == 200 and r.header("X-Kept") == "zero"
    r = fetch(e, "/api")
    assert r.status == 200

    def lines():
        return e.log_text("logs/access.log").splitlines()

    assert wait_for(lambda: len(lines()) >= 2, 5)
    assert lines()[0] == "/kept late=nonzero kept=zero"
    assert lines()[1] == "/api late=nonzero kept=nonzero"


def test_map_in_a_proxied_header(eddy):
    with Backend() as b:
        e = eddy("""
            workers: 1
            maps:
              pool:
                source: $cookie_pool
                default: green
                entries: {blue: "pool-blue"}
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy:
                      pass: "http://127.0.0.1:%d"
                      set_headers: {X-Pool: $pool}
            """ % b.port)
        r, _, _ = request(e.port, get("/x", close=True))
        assert r.status == 200
        r, _, _ = request(e.port, get("/x", close=True,
                                      headers=[("Cookie", "pool=blue")]))
        assert r.status == 200
        assert [q.header("X-Pool") for q in b.requests] == ["green",
                                                             "pool-blue"]


HEAD = """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: {status: 200, body: "$m"}
maps:
"""


def test_config_errors(prefix):
    check_config_error(prefix, HEAD + """
  m:
    source: $host
    entries: {Abc: one, aBC: two}
""", "aBC", r'map key "aBC" differs from "Abc" \(line \d+\) only in case')
    check_config_error(prefix, HEAD + """
  m: {source: $host}
  uri: {source: $host}
""", "uri:", r'map name "uri" is taken')
    check_config_error(prefix, HEAD + """
  m: {source: $host}
  http_x: {source: $host}
""", "http_x", r'map name "http_x" is taken')
    check_config_error(prefix, HEAD + """
  m: {source: $host, entries: {"~^(a": x}}
""", '"~^(a"', r'invalid regex "\^\(a": missing closing parenthesis')
    check_config_error(prefix, HEAD + """
  m: {source: $no_such_thing}
""", "$no_such", r'unknown variable "\$no_such_thing"')
    check_config_error(prefix, HEAD + """
  m: {source: $host, entries: {"~^(a)$": "$2"}}
""", '$2"', r'"\$2" but map key "\^\(a\)\$" has 1 capture group')
    check_config_error(prefix, HEAD + """
  m: {source: $n}
  n: {source: $host, entries: {x: $m}}
""", "$n}", r'map "m" uses itself through \$n: a cycle between maps')
    check_config_error(prefix, HEAD + """
  m: {entries: {x: y}}
""", "{entries", r'expected "source" in map "m"')
