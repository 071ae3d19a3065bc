"""eddy explain (operator.md): how one request would be handled, in text
and JSON, without binding, starting or contacting anything; and that what
it chooses is what the running server answers."""

import json
import re
import socket

from conftest import http_request, position, run_eddy, wait_for
from tlsutil import pki  # noqa: F401 (a fixture)

SITE = """
upstreams:
  app: {servers: ["127.0.0.1:{port1}"]}
servers:
  - listen: {address: "127.0.0.1:{port}", default: true}
    names: [default.example]
    locations:
      /: {return: {status: 200, body: "s1 /\\n"}}
  - listen: "127.0.0.1:{port}"
    names: [shop.example, "*.shop.example", "www.*", "~^img(\\\\d+)\\\\.example$"]
    root: {prefix}/srv
    locations:
      = /healthz: {return: {status: 200, body: "s2 = /healthz\\n"}}
      /: {}
      ^~ /static/: {static: {expires: 1h}}
      /tf/: {static: {try_files: [$uri, $uri/, /fallback.html]}}
      /tf404/: {static: {try_files: [$uri, =404]}}
      /admin/:
        access: [{allow: 10.0.0.0/8}, {allow: 203.0.113.0/24}, {deny: all}]
      /api/: {proxy: {pass: app}}
      /old/: {redirect: "https://new.example$uri"}
      ~* \\.(js|css)$: {return: {status: 200, body: "s2 regex $1\\n"}}
"""


def site(eddy, start=False):
    e = eddy(SITE, ports=2, start=False)
    for name, data in (("srv/index.html", "home\n"),
                       ("srv/fallback.html", "fallback\n"),
                       ("srv/static/app.js", "x" * 2048),
                       ("srv/static/logo.png", "png"),
                       ("srv/dir/a.txt", "a"),
                       ("srv/.secret", "s")):
        e.write_file(name, data)
    if start:
        # The upstream's port ({port1}) stays closed: wait for {port} only.
        e.start(wait=False)
        assert wait_for(lambda: _accepts(e.port)), e.stderr_text()
    return e


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def explain(e, url, *args):
    """eddy explain -p PREFIX -c CONF ARGS URL: (rc, out, err)."""
    return run_eddy(["explain", "-p", e.prefix, "-c", e.conf_path]
                    + list(args) + [url], cwd=e.prefix)


def explain_json(e, url, *args):
    rc, out, err = explain(e, url, "--json", *args)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["version"] == 1
    for key in ("listen", "server", "location", "handler", "rules",
                "result"):
        assert key in doc, key
    return doc


def lines(out, name):
    """The section called name: its first line and its further lines."""
    got = []
    for ln in out.splitlines():
        if ln.startswith(name.ljust(10)) and not got:
            got.append(ln[10:])
        elif got and ln.startswith(" " * 10):
            got.append(ln[10:])
        elif got:
            break
    assert got, "no %s section in:\n%s" % (name, out)
    return got


def conf_text(e):
    return e.conf_path.read_text()


def at(e, needle, nth=1):
    line, col = position(conf_text(e), needle, nth)
    return "%s:%d:%d" % (e.conf_path, line, col)


def url(e, host, path):
    return "http://%s:%d%s" % (host, e.port, path)


# --------------------------------------------------------------------------
# the sample's lines


def test_text_sections_follow_the_sample(eddy):
    e = site(eddy)
    rc, out, err = explain(e, url(e, "shop.example", "/static/app.js"))
    assert rc == 0, err
    names = [ln[:10].strip() for ln in out.splitlines()
             if not ln.startswith(" ")]
    assert names == ["listen", "server", "location", "handler", "rules",
                     "result"], out
    assert lines(out, "listen")[0] == "127.0.0.1:%d (%s): http" % (
        e.port, at(e, '"127.0.0.1:', 3))
    server = lines(out, "server")
    srv1 = at(e, "listen:", 1)
    srv2 = at(e, "listen:", 2)
    assert server[0] == '#2 shop.example (%s): exact name "shop.example"' \
        % srv2
    assert server[1] == "#1 (%s) rejected: no name matches; default for " \
        "127.0.0.1:%d" % (srv1, e.port)
    loc = lines(out, "location")
    assert loc[0] == "^~ /static/ (%s)" % at(e, "^~ /static/")
    trail = [re.sub(r"\s{2,}", "|", ln) for ln in loc[1:]]
    assert trail == [
        "= /healthz|not equal",
        "/|prefix, 1 byte",
        "^~ /static/|prefix, 8 bytes: longest, ^~ skips the regexes",
        "/tf/|not a prefix",
        "/tf404/|not a prefix",
        "/admin/|not a prefix",
        "/api/|not a prefix",
        "/old/|not a prefix",
        "~* \\.(js|css)$|not tried",
    ], loc
    handler = lines(out, "handler")[0]
    assert handler.startswith(
        "static: root %s/srv (inherited from server at %s:%d), "
        "index [index.html] (default), expires 1h (%s)"
        % (e.prefix, e.conf_path, position(conf_text(e), "root:")[0],
           at(e, "1h"))), handler
    assert lines(out, "rules")[0] == \
        "none: no access-phase check in this location"
    assert lines(out, "result")[0] == \
        "200 %s/srv/static/app.js (2.0 KiB, application/javascript; " \
        "charset=utf-8)" % e.prefix


# --------------------------------------------------------------------------
# servers


def test_server_rules(eddy):
    e = site(eddy)
    cases = [
        ("shop.example", 2, "exact name", 'exact name "shop.example"'),
        ("a.b.shop.example", 2, "leading wildcard",
         'leading wildcard "*.shop.example"'),
        ("www.other", 2, "trailing wildcard", 'trailing wildcard "www.*"'),
        ("img12.example", 2, "regex", 'regex "~^img(\\d+)\\.example$"'),
        ("unknown.example", 1, "default",
         'default ("default: true" for 127.0.0.1:%d); no name matches'
         % e.port),
    ]
    for host, index, rule, text in cases:
        rc, out, err = explain(e, url(e, host, "/"))
        assert rc == 0, err
        assert lines(out, "server")[0].endswith("): " + text), out
        doc = explain_json(e, url(e, host, "/"))
        assert doc["server"]["index"] == index
        assert doc["server"]["rule"] == rule
        assert doc["server"]["detail"] == text
        assert [s["index"] for s in doc["server"]["rejected"]] == \
            [3 - index]


def test_server_first_is_the_implicit_default(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            names: [a.example]
            locations: {/: {return: 204}}
          - listen: "127.0.0.1:{port}"
            names: [b.example]
            locations: {/: {return: 204}}
        """, start=False)
    rc, out, err = explain(e, url(e, "c.example", "/"))
    assert rc == 0, err
    server = lines(out, "server")
    assert server[0].endswith("first server on 127.0.0.1:%d, so its "
                              "default; no name matches" % e.port), out
    assert server[1].endswith("rejected: no name matches")
    assert explain_json(e, url(e, "c.example", "/"))["server"]["rule"] == \
        "first"
    doc = explain_json(e, url(e, "b.example", "/"))
    assert doc["server"]["index"] == 2
    assert doc["server"]["rejected"][0]["why"] == \
        "no name matches; default for 127.0.0.1:%d" % e.port


# --------------------------------------------------------------------------
# locations


def test_location_kinds(eddy):
    e = site(eddy)
    cases = [
        ("/healthz", "= /healthz", "exact", "= /healthz:", 1),
        ("/dir/a.txt", "/", "prefix", "/: {}", 1),
        ("/static/x.js", "^~ /static/", "prefix ^~", "^~ /static/", 1),
        ("/dir/x.css", "~* \\.(js|css)$", "regex caseless", "~*", 1),
    ]
    for path, name, kind, needle, nth in cases:
        doc = explain_json(e, url(e, "shop.example", path))
        assert doc["location"]["name"] == name, (path, doc["location"])
        assert doc["location"]["kind"] == kind
        assert doc["location"]["at"] == at(e, needle, nth)
        chosen = [t for t in doc["location"]["trail"]
                  if t["name"] == name][0]
        assert chosen["at"] == at(e, needle, nth)
    doc = explain_json(e, url(e, "shop.example", "/healthz"))
    verdicts = {t["name"]: t["verdict"] for t in doc["location"]["trail"]}
    assert verdicts["= /healthz"] == "equal: chosen, nothing else is tried"
    assert verdicts["/"] == "not tried"
    assert verdicts["~* \\.(js|css)$"] == "not tried"
    doc = explain_json(e, url(e, "shop.example", "/dir/x.css"))
    verdicts = {t["name"]: t["verdict"] for t in doc["location"]["trail"]}
    assert verdicts["/"] == "prefix, 1 byte: longest, but a regex matches"
    assert verdicts["~* \\.(js|css)$"] == "matches: chosen"
    assert doc["result"]["body"] == "s2 regex css\n"
    rc, out, err = explain(e, url(e, "shop.example", "/dir/x.css"))
    assert "~* \\.(js|css)$    matches: chosen" in out, out
    assert lines(out, "result")[0] == \
        '200 OK, 13 bytes of text/plain: "s2 regex css\\n"'


def test_no_location_matches(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            locations: {/a/: {return: 204}}
        """, start=False)
    rc, out, err = explain(e, url(e, "x", "/b"))
    assert rc == 0, err
    assert lines(out, "location")[0] == (
        '(none) (server #1): no location matches "/b"; the server\'s own '
        'settings')
    assert lines(out, "result")[0] == "404 Not Found: no content handler"
    doc = explain_json(e, url(e, "x", "/b"))
    assert doc["location"]["kind"] == "none"
    assert doc["status"] == 404


# --------------------------------------------------------------------------
# rules


def test_access_allow_and_deny(eddy):
    e = site(eddy)
    rc, out, err = explain(e, url(e, "shop.example", "/admin/x"),
                           "--remote-addr", "203.0.113.7")
    assert rc == 0, err
    assert lines(out, "rules")[0] == \
        'access: allow, rule 2 "allow: 203.0.113.0/24" (%s)' % \
        at(e, "{allow: 203.0.113.0/24}")
    rc, out, err = explain(e, url(e, "shop.example", "/admin/x"))
    assert lines(out, "rules")[0] == \
        'access: deny, rule 3 "deny: all" (%s) -> 403' % at(e, "{deny: all}")
    assert lines(out, "result")[0] == ("403 Forbidden: refused in the access "
                                       "phase; the content handler does not "
                                       "run")
    doc = explain_json(e, url(e, "shop.example", "/admin/x"))
    assert doc["rules"] == [{"module": "access", "verdict": "deny",
                             "detail": 'rule 3 "deny: all" (%s)'
                             % at(e, "{deny: all}"), "status": 403}]
    assert doc["status"] == 403


def test_limit_req_says_state_is_not_consulted(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            locations:
              /:
                access: [{allow: all}]
                limit_req: {rate: 10r/s, burst: 20}
                return: 204
        """, start=False)
    rc, out, err = explain(e, url(e, "x", "/"), "--remote-addr", "::1")
    assert rc == 0, err
    rules = lines(out, "rules")[0]
    assert rules.startswith('access: allow, rule 1 "allow: all"'), rules
    assert '; limit_req: 10r/s burst 20, key $remote_addr = "::1"' in rules
    assert rules.endswith(", state not consulted"), rules
    doc = explain_json(e, url(e, "x", "/"))
    assert doc["rules"][1]["verdict"] == "state not consulted"
    assert doc["status"] == 204


def test_auth_basic_verifies_the_credentials_given(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            locations:
              /:
                auth_basic: {realm: "Staff only", user_file: conf/htpasswd}
                return: 204
        """, start=False)
    # apr1 of "secret", as htpasswd -m wrote it.
    e.write_file("conf/htpasswd",
                 "bob:$apr1$rltxulAK$3dQsC.1royUO4uQRsvQO21\n")
    u = url(e, "x", "/")
    rc, out, err = explain(e, u)
    assert rc == 0, err
    rules = lines(out, "rules")[0]
    assert rules.startswith('auth_basic: deny, no credentials: 401 with '
                            'realm "Staff only", 1 users in conf/htpasswd'), \
        rules
    good = "Authorization: Basic Ym9iOnNlY3JldA=="        # bob:secret
    bad = "Authorization: Basic Ym9iOm5vcGU="             # bob:nope
    eve = "Authorization: Basic ZXZlOnNlY3JldA=="         # eve:secret
    rc, out, err = explain(e, u, "--header", good)
    rules = lines(out, "rules")[0]
    assert rules.startswith('auth_basic: allow, user "bob": password '
                            'verified (apr1, conf/htpasswd:1)'), rules
    assert "secret" not in out
    rc, out, err = explain(e, u, "--header", bad)
    assert 'user "bob": password mismatch' in lines(out, "rules")[0]
    rc, out, err = explain(e, u, "--header", eve)
    assert 'user "eve" not found in conf/htpasswd' in lines(out, "rules")[0]
    doc = explain_json(e, u, "--header", bad)
    assert doc["rules"][0]["module"] == "auth_basic"
    assert doc["status"] == 401
    assert explain_json(e, u, "--header", good)["status"] == 204


# --------------------------------------------------------------------------
# results


def test_try_files_fallthrough(eddy):
    e = site(eddy)
    rc, out, err = explain(e, url(e, "shop.example", "/tf/nope"))
    assert rc == 0, err
    result = lines(out, "result")
    assert result == [
        'internal redirect to "/fallback.html" (try_files fallback)',
        "try_files $uri: %s/srv/tf/nope not found" % e.prefix,
        "try_files $uri/: %s/srv/tf/nope/ not found" % e.prefix,
    ], out
    assert "redirect  /fallback.html (try_files fallback)" in out
    assert out.rstrip().splitlines()[-1] == \
        "result    200 %s/srv/fallback.html (9 B, text/html; " \
        "charset=utf-8)" % e.prefix
    doc = explain_json(e, url(e, "shop.example", "/tf/nope"))
    assert doc["result"]["redirect"] == "/fallback.html"
    assert doc["redirects"][0]["uri"] == "/fallback.html"
    assert doc["redirects"][0]["location"]["name"] == "/"
    assert doc["redirects"][0]["result"]["status"] == 200
    assert doc["status"] == 200


def test_regress_try_files_candidate_that_cannot_be_opened(eddy):
    # A candidate that exists but cannot be opened (a unix socket file:
    # ENXIO) ends the request with 500 in the server; explain says so too
    # instead of moving on to the fallback.
    e = site(eddy, start=True)
    (e.prefix / "srv" / "tf").mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(e.prefix / "srv" / "tf" / "sock"))
        rc, out, err = explain(e, url(e, "shop.example", "/tf/sock"))
        assert rc == 0, err
        result = lines(out, "result")
        assert result[0].startswith(
            "500 try_files $uri: %s/srv/tf/sock cannot be opened ("
            % e.prefix), out
        assert explain_json(e, url(e, "shop.example", "/tf/sock"))[
            "status"] == 500
        r = http_request(e.port, "GET", "/tf/sock",
                         headers={"Host": "shop.example"})
        assert r.status == 500
    finally:
        sock.close()


def test_404_403_301_405(eddy):
    e = site(eddy)
    cases = [
        ("/nope", "GET", 404, "404 %s/srv/nope: no such file"),
        ("/tf404/zz", "GET", 404, '404 Not Found: no try_files candidate '
         'exists; the last item is "=404"'),
        ("/.secret", "GET", 404, '404 "/.secret" has a name starting with '
         '"." (dotfiles: deny)'),
        ("/dir/", "GET", 403, "403 %s/srv/dir/ is a directory without an "
         "index file, and autoindex is off"),
        ("/dir", "GET", 301, "301 %s/srv/dir is a directory: Location: "
         "/dir/"),
        ("/index.html", "POST", 405, "405 POST is not allowed here; Allow: "
         "GET, HEAD"),
    ]
    for path, method, status, text in cases:
        u = url(e, "shop.example", path)
        rc, out, err = explain(e, u, "--method", method)
        assert rc == 0, err
        want = text % e.prefix if "%s" in text else text
        assert lines(out, "result")[0] == want, out
        doc = explain_json(e, u, "--method", method)
        assert doc["status"] == status
        assert doc["result"]["status"] == status


def test_index_file_is_an_internal_redirect(eddy):
    e = site(eddy)
    doc = explain_json(e, url(e, "shop.example", "/"))
    assert doc["result"]["redirect"] == "/index.html"
    assert doc["result"]["steps"] == ["index index.html: %s/srv/index.html "
                                      "exists" % e.prefix]
    assert doc["redirects"][0]["reason"] == "index file"
    assert doc["redirects"][0]["result"]["file"] == \
        "%s/srv/index.html" % e.prefix
    assert doc["status"] == 200


def test_redirect_is_expanded(eddy):
    e = site(eddy)
    rc, out, err = explain(e, url(e, "shop.example", "/old/a?b=1"))
    assert rc == 0, err
    assert lines(out, "handler")[0] == (
        'redirect: to https://new.example$uri (%s), status 301 (default)'
        % at(e, '"https://new.example$uri"'))
    assert lines(out, "result")[0] == \
        "301 Moved Permanently: Location: https://new.example/old/a"


def test_proxy_location_contacts_nothing(eddy):
    e = site(eddy)
    # The upstream's port listens: explain must not connect to it.
    up = socket.socket()
    up.bind(("127.0.0.1", e.ports[1]))
    up.listen(8)
    up.setblocking(False)
    try:
        u = url(e, "shop.example", "/api/v1?q=1")
        rc, out, err = explain(e, u, "--header", "X-Trace: 7",
                               "--remote-addr", "198.51.100.4")
        assert rc == 0, err
        try:
            up.accept()
            connected = True
        except BlockingIOError:
            connected = False
        assert not connected, "explain connected to the upstream"
    finally:
        up.close()
    assert lines(out, "handler")[0] == (
        "proxy: pass app (%s), upstream app [127.0.0.1:%d] round_robin (%s)"
        % (at(e, "app}}"), e.ports[1], at(e, "{servers:")))
    result = lines(out, "result")
    assert result[0] == ("proxied to upstream app (127.0.0.1:%d first of "
                         "1), not contacted: the status is the upstream's"
                         % e.ports[1])
    assert result[1:] == [
        "GET /api/v1?q=1 HTTP/1.1",
        "Host: shop.example:%d" % e.port,
        "X-Trace: 7",
        "X-Forwarded-For: 198.51.100.4",
        "X-Forwarded-Proto: http",
        "X-Forwarded-Host: shop.example:%d" % e.port,
        "X-Real-IP: 198.51.100.4",
        "Connection: close",
    ], out
    doc = explain_json(e, u)
    assert doc["handler"]["module"] == "proxy"
    assert doc["result"]["status"] is None
    assert doc["result"]["upstream"] == "app"
    assert doc["result"]["request_line"] == "GET /api/v1?q=1 HTTP/1.1"
    assert doc["result"]["target"] == "/api/v1?q=1"


def test_filters_are_listed_with_the_handler(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            gzip: {enabled: true, level: 7}
            headers: {add: {X-A: "1"}}
            locations: {/: {return: 204}}
        """, start=False)
    rc, out, err = explain(e, url(e, "x", "/"))
    assert rc == 0, err
    handler = lines(out, "handler")
    assert handler[0] == "return: status 204 (%s)" % at(e, "204")
    assert handler[1].startswith(
        "gzip: enabled true (inherited from server at %s:%d), level 7 "
        "(inherited from server at %s:%d), min_length 256 (default)"
        % (e.conf_path, 3, e.conf_path, 3)), handler
    assert handler[2] == 'headers: add X-A: 1 (%s)' % at(e, '"1"')
    doc = explain_json(e, url(e, "x", "/"))
    assert [f["module"] for f in doc["handler"]["filters"]] == \
        ["gzip", "headers"]


def test_error_pages_are_followed(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            root: {prefix}/srv
            error_pages: {404: /err/404.html, 403: /err/403.html}
            locations:
              /: {}
              /deny/: {access: [{deny: all}]}
        """, start=False)
    e.write_file("srv/err/404.html", "custom 404\n")
    rc, out, err = explain(e, url(e, "x", "/nope"))
    assert rc == 0, err
    assert "redirect  /err/404.html (error_pages 404)" in out, out
    assert out.splitlines()[-1] == \
        "status    404 (the page goes out with the error's status)"
    rc, out, err = explain(e, url(e, "x", "/deny/"))
    assert out.splitlines()[-1] == \
        "status    403 (the page failed: the built-in page of the error)"
    e.start()
    for path in ("/nope", "/deny/"):
        doc = explain_json(e, url(e, "x", path))
        r = e.get(path)
        assert r.status == doc["status"], (path, r.status, doc)
        assert doc["redirects"][0]["reason"].startswith("error_pages ")
    assert e.get("/nope").body == b"custom 404\n"


# --------------------------------------------------------------------------
# errors


def test_usage_errors_exit_1(eddy):
    e = site(eddy)
    base = ["explain", "-p", e.prefix, "-c", e.conf_path]
    for args, message in [
        ([], "eddy: explain needs a URL"),
        (["http://a/", "http://b/"], "eddy: explain takes one URL"),
        (["ftp://x/"], 'eddy: invalid URL "ftp://x/": expected '
         'http[s]://host[:port]/path?query'),
        (["--bogus", "http://x/"], "unrecognized option '--bogus'"),
        (["--remote-addr", "nope", url(e, "x", "/")],
         'eddy: invalid --remote-addr "nope": expected an IPv4 or IPv6 '
         'address'),
        (["--header", "novalue", url(e, "x", "/")],
         "eddy: invalid --header \"novalue\": expected 'Name: value'"),
        (["http://x:1/"], "eddy: no server listens on port 1; listening: "
         "127.0.0.1:%d" % e.port),
        (["--listen", "127.0.0.1:1", url(e, "x", "/")],
         "eddy: --listen 127.0.0.1:1: no server listens there"),
        (["--listen", "127.0.0.1:%d" % e.port, "http://x:1/"],
         "eddy: --listen 127.0.0.1:%d: not on the URL's port 1" % e.port),
    ]:
        rc, out, err = run_eddy(base + args, cwd=e.prefix)
        assert rc == 1, (args, out, err)
        assert message in err, (args, err)
        assert out == ""


def test_configuration_errors_as_t(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            server_name: x
        """, start=False)
    rc_t, out_t, err_t = e.ctl("-t")
    rc, out, err = explain(e, url(e, "x", "/"))
    assert rc == rc_t == 1
    assert out == ""
    assert err == err_t
    assert 'unknown key "server_name" in server #1; eddy calls it "names"' \
        in err


def test_listen_picks_among_listeners(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            locations: {/: {return: {status: 200, body: "one"}}}
          - listen: "127.0.0.2:{port}"
            locations: {/: {return: {status: 200, body: "two"}}}
        """, start=False)
    rc, out, err = explain(e, url(e, "x", "/"))
    assert rc == 0, err
    assert lines(out, "listen")[1] == \
        "also on port %d: 127.0.0.2:%d (choose with --listen)" % (e.port,
                                                                 e.port)
    doc = explain_json(e, url(e, "x", "/"), "--listen",
                       "127.0.0.2:%d" % e.port)
    assert doc["listen"]["address"] == "127.0.0.2:%d" % e.port
    assert doc["result"]["body"] == "two"


# --------------------------------------------------------------------------
# explain agrees with the running server


def test_agrees_with_the_running_server(eddy):
    e = site(eddy, start=True)
    for host, path, method in [
        ("shop.example", "/healthz", "GET"),
        ("shop.example", "/a/b.JS", "GET"),
        ("img7.example", "/x.css", "GET"),
        ("nobody.example", "/x.css", "GET"),
        ("shop.example", "/static/app.js", "GET"),
        ("shop.example", "/static/none.js", "GET"),
        ("shop.example", "/dir", "GET"),
        ("shop.example", "/dir/", "GET"),
        ("shop.example", "/tf/nope", "GET"),
        ("shop.example", "/tf404/zz", "GET"),
        ("shop.example", "/admin/x", "GET"),
        ("shop.example", "/index.html", "POST"),
        ("shop.example", "/.secret", "GET"),
        ("www.shop.example", "/old/q", "GET"),
    ]:
        doc = explain_json(e, url(e, host, path), "--method", method)
        r = http_request(e.port, method, path, headers={"Host": host})
        assert r.status == doc["status"], (host, path, doc["result"], r)
        if "body" in doc["result"]:
            assert r.body.decode() == doc["result"]["body"], (host, path)
        final = doc["redirects"][-1]["result"] if doc["redirects"] \
            else doc["result"]
        if r.status == 200 and "file" in final:
            with open(final["file"], "rb") as f:
                assert r.body == f.read(), (host, path)
        if r.status == 301:
            assert doc["result"]["summary"].endswith(
                "Location: " + r.header("Location")), \
                (doc["result"], r.header("Location"))


def test_https_url_names_sni(eddy, pki):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            names: [default.test]
            tls: {certificate: "%s", key: "%s"}
            locations: {/: {return: 204}}
          - listen: "127.0.0.1:{port}"
            names: [a.test]
            tls: {certificate: "%s", key: "%s"}
            locations: {/: {return: 200}}
        """ % (pki.path("default.pem"), pki.path("default.key"),
               pki.path("a.pem"), pki.path("a.key")), start=False)
    u = "https://a.test:%d/" % e.port
    rc, out, err = explain(e, u)
    assert rc == 0, err
    assert lines(out, "listen")[0].endswith(
        ': tls, SNI "a.test" gives the certificate of server #2'), out
    # Host says otherwise: SNI stays the URL's.
    doc = explain_json(e, u, "--header", "Host: default.test")
    assert doc["listen"]["sni_server"] == 2
    assert doc["server"]["index"] == 1
    assert doc["status"] == 204


def test_real_ip_sets_the_address_the_rules_see(eddy):
    e = eddy("""
        servers:
          - listen: 127.0.0.1:{port}
            names: [shop.example]
            real_ip: {from: [127.0.0.1/32]}
            locations:
              /:
                access: [{deny: 203.0.113.0/24}, {allow: all}]
                return: 204
    """, start=False)
    u = "http://shop.example:%d/x" % e.port
    # A trusted peer's X-Forwarded-For: the client is the header's address,
    # and access denies it.
    rc, out, err = explain(e, u, "--remote-addr", "127.0.0.1", "--header",
                           "X-Forwarded-For: 198.51.100.1, 203.0.113.9")
    assert rc == 0, err
    rules = lines(out, "rules")[0].split("; ")
    assert re.match(r"real_ip: trusted, client 203\.0\.113\.9 from "
                    r"X-Forwarded-For, sent by 127\.0\.0\.1 \(", rules[0]), \
        rules
    assert rules[1].startswith("access: deny, rule 1"), rules
    assert lines(out, "result")[0].startswith("403 Forbidden"), out
    # An untrusted peer: the header is not believed.
    rc, out, err = explain(e, u, "--remote-addr", "192.0.2.5", "--header",
                           "X-Forwarded-For: 203.0.113.9")
    assert rc == 0, err
    rules = lines(out, "rules")[0].split("; ")
    assert rules[0].startswith("real_ip: peer not trusted, 192.0.2.5 is "
                               "not in from"), rules
    assert rules[1].startswith("access: allow"), rules


def test_health_location(eddy):
    e = eddy("""
        upstreams:
          app: {servers: ["127.0.0.1:{port1}"]}
        servers:
          - listen: "127.0.0.1:{port}"
            locations:
              = /healthz: {health: {require_upstreams: [app]}}
              = /up: {health: true}
        """, ports=2, start=False)
    rc, out, err = explain(e, url(e, "x", "/healthz"))
    assert rc == 0, err
    assert lines(out, "handler") == [
        "health: require_upstreams [app] (%s)" % at(e, "[app]")]
    assert lines(out, "result") == [
        '200 "ok" while serving (text/plain, Cache-Control: no-store)',
        '503 "draining" during drain_delay after QUIT',
        '503 "upstream app down" when every server of upstream app is '
        'down (state not consulted)']
    doc = explain_json(e, url(e, "x", "/up"))
    assert doc["handler"] == {"module": "health", "settings": [
        {"name": "require_upstreams", "value": "[]", "from": "default"}],
        "filters": []}
    assert doc["status"] == 200
    doc = explain_json(e, url(e, "x", "/up"), "--method", "POST")
    assert doc["status"] == 405


def test_auth_request_names_its_location_and_is_not_asked(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            locations:
              /_auth:
                internal: true
                return: 204
              /:
                auth_request: {uri: /_auth, timeout: 2s}
                return: 204
        """, start=False)
    rc, out, err = explain(e, url(e, "x", "/"))
    assert rc == 0, err
    rules = lines(out, "rules")[0]
    assert rules.startswith('auth_request: a GET for /_auth answered by '
                            'location "/_auth" decides (2xx allows, 401 and '
                            '403 refuse, else 500; timeout 2000ms)'), rules
    assert rules.endswith(", state not consulted"), rules
    rc, out, err = explain(e, url(e, "x", "/_auth"))
    assert rc == 0, err
    result = lines(out, "result")[0]
    assert result.startswith("404 Not Found: an internal location"), result


def test_rewrite_rules_and_limit_conn(eddy):
    e = eddy("""
        servers:
          - listen: "127.0.0.1:{port}"
            rewrite:
              - {regex: "^/srv/(.*)$", replacement: /new/$1}
              - {regex: "^/gone$", replacement: /new/, flag: redirect}
            locations:
              /old/:
                rewrite:
                  - {regex: "^/old/(.*)$", replacement: "/new/$1?x=1",
                     flag: last}
              /new/:
                limit_conn: {max: 4, key: $remote_addr}
                return: {status: 200, body: "new $uri $args\\n"}
              /away/:
                rewrite:
                  - {regex: "^/away/(.*)$", replacement: /there/$1,
                     flag: permanent}
        """)
    rc, out, err = explain(e, url(e, "x", "/old/a?k=2"))
    assert rc == 0, err
    assert lines(out, "rewrite")[0] == '2 rules, none matches "/old/a"'
    text = out.splitlines()
    assert 'rewrite   rule 1 (^/old/(.*)$) rewrites "/old/a" to "/new/a", ' \
        'query "x=1&k=2"' in text, out
    assert 'result    rewritten to "/new/a": the location is chosen ' \
        'again' in text, out
    assert 'redirect  /new/a (rewrite)' in text, out
    assert any(ln.startswith("rules     limit_conn: max 4 in progress, key "
                             "$remote_addr = ") for ln in text), out
    doc = explain_json(e, url(e, "x", "/old/a?k=2"))
    assert doc["rewrite"] == {"from": "/old/a", "rule": 1, "flag": "last",
                              "to": "/new/a"}
    assert doc["status"] == 200
    final = doc["redirects"][-1]["result"]
    r = http_request(e.port, "GET", "/old/a?k=2", headers={"Host": "x"})
    assert r.status == 200 and r.body.decode() == final["body"] \
        == "new /new/a x=1&k=2\n"
    # The server's rules come before the location.
    doc = explain_json(e, url(e, "x", "/srv/b"))
    assert doc["server_rewrite"]["to"] == "/new/b"
    assert doc["location"]["name"] == "/new/"
    # A redirect is the result.
    rc, out, err = explain(e, url(e, "x", "/away/c"))
    assert 'result    301 Moved Permanently to "/there/c" (rewrite)' in \
        out.splitlines(), out
    r = http_request(e.port, "GET", "/away/c", headers={"Host": "x"})
    assert r.status == 301 and r.header("Location") == "/there/c"
    doc = explain_json(e, url(e, "x", "/gone"))
    assert doc["location"] is None and doc["status"] == 302
    assert doc["result"]["summary"] == '302 Found to "/new/" (rewrite)'


def test_fastcgi_location_contacts_nothing(eddy):
    e = eddy("""
        upstreams:
          php: {servers: ["unix:{prefix}/php.sock"], keepalive: 2}
        servers:
          - listen: "127.0.0.1:{port}"
            root: {prefix}/www
            locations:
              '~ \\.php(/|$)':
                fastcgi: {pass: php, split_path_info: '^(.+?\\.php)(/.*)$'}
        """, start=False)
    e.write_file("www/a.php", "<?php")
    rc, out, err = explain(e, url(e, "x.example", "/a.php/more?q=1"))
    assert rc == 0, err
    assert lines(out, "handler")[0].startswith(
        "fastcgi: pass php (%s), upstream php [unix:%s/php.sock] keepalive 2"
        % (at(e, "php, split"), e.prefix))
    result = lines(out, "result")
    assert result[0] == ("passed to FastCGI application php (unix:%s/php.sock "
                         "first of 1), not contacted: the status is the "
                         "application's" % e.prefix)
    assert "SCRIPT_NAME=\"/a.php\"" in result
    assert "PATH_INFO=\"/more\"" in result
    assert "SCRIPT_FILENAME=\"%s/www/a.php\"" % e.prefix in result
    assert "QUERY_STRING=\"q=1\"" in result
    rc, out, err = explain(e, url(e, "x.example", "/none.php"))
    assert rc == 0, err
    assert lines(out, "result")[0] == (
        "404 fastcgi script \"%s/www/none.php\" is not a regular file "
        "(check_script)" % e.prefix)


def test_cgi_script_found_and_refused(eddy, tmp_path):
    import os
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="eddy-cgi-explain-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        for name, mode in (("a.sh", 0o755), ("ww.sh", 0o757)):
            with open(os.path.join(d, name), "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(os.path.join(d, name), mode)
        e = eddy("""
            user: nobody
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /cgi-bin/:
                    cgi: {alias: %s, timeout: 5s}
        """ % d, start=False)
        rc, out, err = explain(e, url(e, "x", "/cgi-bin/a.sh/more?q=1"))
        assert rc == 0, err
        assert lines(out, "handler")[0].startswith("cgi: alias %s (" % d)
        result = lines(out, "result")
        assert result[0] == ('runs cgi script "%s/a.sh", not started here: '
                             'the status is the script\'s' % d), out
        assert 'SCRIPT_NAME "/cgi-bin/a.sh"' in result
        assert 'PATH_INFO "/more"' in result
        doc = explain_json(e, url(e, "x", "/cgi-bin/a.sh/more"))
        assert doc["handler"]["module"] == "cgi"
        assert doc["result"]["script_name"] == "/cgi-bin/a.sh"
        rc, out, err = explain(e, url(e, "x", "/cgi-bin/ww.sh"))
        assert lines(out, "result")[0] == (
            '403 cgi script "%s/ww.sh" is writable by others' % d), out
        rc, out, err = explain(e, url(e, "x", "/cgi-bin/nope.sh"))
        assert lines(out, "result")[0] == (
            '404 cgi script "%s/nope.sh" not found' % d), out
    finally:
        shutil.rmtree(d, ignore_errors=True)
