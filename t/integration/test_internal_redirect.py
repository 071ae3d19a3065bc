"""Internal redirects (try_files fallbacks, index files, error_pages):
each one chooses the location again and runs that location's access
phase (access, limit_req) before its content handler, as nginx does;
limit_req counts a request once per zone; a redirect cycle is a 500 with
an error log line, never a hang."""

import re

from conftest import wait_for
from httputil import Client, get, request

CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    names: [redir.test]
    root: html
    locations:
      /:
        static: {}
      /app/:
        static: {try_files: [$uri, /private/fb]}
      /app-args/:
        static: {try_files: [$uri, "/private/fb?from=app"]}
      /app-re/:
        static: {try_files: [$uri, /secret.txt]}
      '~ ^/secret':
        access: [{deny: all}]
        return: {status: 200, body: "secret by regex\n"}
      /private/:
        access: [{deny: all}]
        return: {status: 200, body: "private fallback\n"}
      /open/:
        static: {try_files: [$uri, /allowed/fb]}
      /allowed/:
        access: [{allow: 127.0.0.1}, {deny: all}]
        return: {status: 200, body: "allowed $uri $args\n"}
      /keep-args/:
        static: {try_files: [$uri, /allowed/fb]}
      /new-args/:
        static: {try_files: [$uri, "/allowed/fb?a=$arg_x b\"c"]}
      /gone/:
        error_pages: {404: /private/page}
        return: 404
      /gone-args/:
        error_pages: {404: "/allowed/page?code=404"}
        return: 404
      /gone-missing/:
        error_pages: {404: /nonexistent-page}
        return: 404
      = /index.html:
        access: [{deny: all}]
        static: {}
      /pub/:
        static: {}
      '~ ^/hidden/.*\.html$':
        access: [{deny: all}]
        static: {}
      /loop1/:
        static: {try_files: [$uri, /loop2/x]}
      /loop2/:
        static: {try_files: [$uri, /loop1/x]}
"""


def start(eddy):
    e = eddy(CONFIG)
    e.write_file("html/index.html", "top index\n")
    e.write_file("html/pub/index.html", "pub index\n")
    e.write_file("html/hidden/index.html", "hidden index\n")
    e.write_file("html/hidden/other.txt", "other\n")
    e.write_file("html/app/real.txt", "real file\n")
    return e


def fetch(e, target, host="redir.test"):
    r, _, _ = request(e.port, get(target, host=host, close=True))
    return r


def test_regress_try_files_fallback_runs_access(eddy):
    e = start(eddy)
    # The file itself is served by /app/ (no access rules there).
    r = fetch(e, "/app/real.txt")
    assert r.status == 200 and r.body == b"real file\n"
    # The fallback location denies everyone: it must not answer.
    for target in ("/app/missing", "/app/a/b/c", "/app-args/x?y=1",
                   "/app-re/nothing"):
        r = fetch(e, target)
        assert r.status == 403, (target, r)
        assert b"fallback" not in r.body and b"secret" not in r.body
    # Reached directly, the same locations deny too.
    assert fetch(e, "/private/fb").status == 403
    assert fetch(e, "/secret.txt").status == 403


def test_try_files_fallback_allowed_and_args(eddy):
    e = start(eddy)
    # Allowed by the fallback location's rules: served, with $uri the
    # fallback's; without "?" in the fallback, $args stay the client's.
    r = fetch(e, "/open/missing")
    assert r.status == 200 and r.body == b"allowed /allowed/fb \n"
    r = fetch(e, "/keep-args/missing?k=v")
    assert r.status == 200 and r.body == b"allowed /allowed/fb k=v\n"
    # With "?", its args replace them; bytes a query cannot hold are
    # %-encoded.
    r = fetch(e, "/new-args/missing?x=1")
    assert r.status == 200, r
    assert r.body == b"allowed /allowed/fb a=1%20b%22c\n"


def test_regress_error_page_runs_access(eddy):
    e = start(eddy)
    r = fetch(e, "/gone/x")
    # The page's location refuses: its 403 stands, the page is not shown.
    assert r.status == 403, r
    assert b"private" not in r.body and b"403" in r.body
    # An allowed page is shown with the original status and its args.
    r = fetch(e, "/gone-args/x?orig=1")
    assert r.status == 404 and r.body == b"allowed /allowed/page code=404\n"
    # A page that is missing: the built-in page of the original status.
    r = fetch(e, "/gone-missing/x")
    assert r.status == 404 and b"404" in r.body


def test_regress_index_runs_access(eddy):
    e = start(eddy)
    # "/" has html/index.html, whose own location denies everyone.
    r = fetch(e, "/")
    assert r.status == 403, r
    assert b"top index" not in r.body
    assert fetch(e, "/index.html").status == 403
    # A regex location on the index file's URI, not on the directory's.
    r = fetch(e, "/hidden/")
    assert r.status == 403, r
    assert b"hidden index" not in r.body
    assert fetch(e, "/hidden/other.txt").body == b"other\n"
    # An index in a location that allows it is still served.
    r = fetch(e, "/pub/")
    assert r.status == 200 and r.body == b"pub index\n"
    r = fetch(e, "/pub/?q=1")
    assert r.status == 200 and r.body == b"pub index\n"


def test_regress_redirect_cycle_is_500(eddy):
    e = start(eddy)
    with Client(e.port) as c:
        c.send(get("/loop1/start", host="redir.test"))
        r = c.response()
        assert r.status == 500, r
        # The connection goes on: nothing hangs.
        c.send(get("/pub/", host="redir.test", close=True))
        r = c.response()
        assert r.status == 200 and r.body == b"pub index\n"
    line = re.compile(
        r'\[error\] \d+#\d+: rewrite or internal redirection cycle while '
        r'redirecting to "/loop[12]/x", client: 127\.0\.0\.1, server: redir\.test, '
        r'request: "GET /loop1/start HTTP/1\.1", host: "redir\.test"$',
        re.M)
    assert wait_for(lambda: line.search(e.error_log), 5), e.error_log
    assert len(line.findall(e.error_log)) == 1


LIMIT = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /lim/:
        static: {try_files: [$uri, /limited/fb]}
      /limited/:
        limit_req: {rate: 1r/m, burst: 0, status: 503}
        return: {status: 200, body: "limited fallback\n"}
      /lim-err/:
        error_pages: {404: /limited/page}
        return: 404
  - listen: 127.0.0.1:{port1}
    root: html
    limit_req: {rate: 1r/m, burst: 1, status: 503}
    locations:
      /a/:
        static: {try_files: [$uri, /b/x]}
      /b/:
        return: {status: 200, body: "b\n"}
      /c/:
        limit_req: {rate: 1000r/s, burst: 1000, status: 429}
        static: {try_files: [$uri, /b/x]}
"""


def test_regress_try_files_fallback_runs_limit_req(eddy):
    e = eddy(LIMIT, ports=2)
    r = fetch(e, "/lim/one", host="a")
    assert r.status == 200 and r.body == b"limited fallback\n"
    # rate 1r/m, burst 0: the second request reaching the fallback is
    # refused, whatever URI led there.
    assert fetch(e, "/lim/two", host="a").status == 503
    assert fetch(e, "/lim-err/x", host="a").status == 503
    assert fetch(e, "/limited/direct", host="a").status == 503


def test_regress_limit_req_counts_a_request_once_per_zone(eddy):
    """/a/ and /b/ share the server's zone (2 requests: rate 1r/m, burst
    1); /c/ has a zone of its own that never refuses."""
    e = eddy(LIMIT, ports=2)
    port = e.ports[1]

    def status(target):
        r, _, _ = request(port, get(target, close=True))
        return r.status
    # Reaches the shared zone only through the fallback: counted there
    # (without the access phase on redirects it would not be).
    assert status("/c/1") == 200
    # Counted in /a/, then redirected into /b/ under the same zone: not
    # counted again (counted twice, the zone would now be empty).
    assert status("/a/1") == 200
    # Two requests counted: the zone is empty.
    assert status("/a/2") == 503
    assert status("/b/direct") == 503


def test_regress_try_files_fallback_takes_other_methods(eddy):
    # A front controller: a POST to a path that is no file reaches the
    # fallback (as nginx's try_files ... /index.php); static's own
    # methods apply only to a file try_files finds.
    e = start(eddy)
    r = fetch_method(e, "POST", "/open/missing?k=v", b"form=1")
    assert r.status == 200 and r.body == b"allowed /allowed/fb k=v\n", r
    r = fetch_method(e, "DELETE", "/open/missing", b"")
    assert r.status == 200, r
    # A file found by try_files still refuses what static does not serve.
    r = fetch_method(e, "POST", "/app/real.txt", b"form=1")
    assert r.status == 405 and r.header("allow") == "GET, HEAD", r
    # Without try_files, the refusal comes first, as before.
    r = fetch_method(e, "POST", "/pub/index.html", b"x")
    assert r.status == 405, r


def fetch_method(e, method, target, body):
    r, _, _ = request(e.port, get(target, host="redir.test", method=method,
                                  body=body, close=True))
    return r
