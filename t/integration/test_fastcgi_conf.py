"""The fastcgi block's -t errors (fastcgi-cgi.md), each at its
file:line:col, and the HTTP/2 path through the request core."""

import pytest

from conftest import check_config_error, run_eddy
from fcgiutil import FcgiServer, response

BASE = """
    upstreams:
      php:
        servers: ["127.0.0.1:9000"]
    servers:
      - listen: 127.0.0.1:{port}
        root: /tmp
        locations:
          /:
            fastcgi:
%s
"""


def block(lines):
    return BASE % "\n".join("              " + ln for ln in lines)


@pytest.mark.parametrize("lines,needle,pattern", [
    (["root: /srv"], "root: /srv",
     r'fastcgi needs "pass": an upstream name, host:port or unix:/path$'),
    (["pass: phpp"], "phpp", r'unknown upstream "phpp"$'),
    (["pass: http://127.0.0.1:9000"], "http://",
     r'fastcgi takes no scheme'),
    (["pass: php", "split_path_info: '^(.+?\\.php(/.*)$'"], "'^(.+",
     r'invalid split_path_info: missing closing parenthesis at offset 16$'),
    (["pass: php", "split_path_info: '^(.+\\.php)$'"], "'^(.+",
     r'invalid split_path_info: needs two capture groups$'),
    (["pass: php", "params:", '  SCRIPT FILENAME: "x"'], "SCRIPT FILENAME",
     r'invalid param name "SCRIPT FILENAME"$'),
    (["pass: php", "params:",
      "  SCRIPT_FILENAME: $document_root$fastcgi_scrpt_name"],
     "$fastcgi_scrpt_name",
     r'unknown variable "\$fastcgi_scrpt_name"; did you mean '
     r'"\$fastcgi_script_name"\?$'),
    (["pass: php", "next_upstream: [error, nope]"], "[error",
     r'expected error, timeout, 502, 503, 504 or off'),
    # A value no port number can hold: the needle is found once.
    (["pass: php", "buffer_size: 10g"], "10g", r'out of range'),
    (["pass: php", "colour: red"], "colour", r'unknown key'),
])
def test_config_errors(tmp_path, lines, needle, pattern):
    check_config_error(tmp_path, block(lines), needle, pattern)


def test_check_script_needs_root(tmp_path):
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                fastcgi:
                  pass: unix:/run/php.sock
        """, "pass: unix", r'fastcgi check_script needs a root; set root '
        r'or check_script: false$')


def test_check_script_false_needs_no_root(tmp_path, prefix):
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text("""
servers:
  - listen: 127.0.0.1:18471
    locations:
      /:
        fastcgi: {pass: "unix:/run/php.sock", check_script: false}
""")
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)
    assert rc == 0, err


def test_health_checked_group_refused(tmp_path):
    check_config_error(tmp_path, """
        upstreams:
          php:
            servers: ["127.0.0.1:9000"]
            health_check: {path: /ping}
        servers:
          - listen: 127.0.0.1:{port}
            root: {prefix}
            locations:
              /:
                fastcgi: {pass: php}
        """, "{path: /ping}", r'upstream "php" has a health_check \(HTTP\); '
        r'it cannot serve fastcgi$')


def test_group_shared_with_proxy_refused(tmp_path):
    check_config_error(tmp_path, """
        upstreams:
          php:
            servers: ["127.0.0.1:9000"]
        servers:
          - listen: 127.0.0.1:{port}
            root: {prefix}
            locations:
              /a:
                proxy: {pass: php}
              /b:
                fastcgi: {pass: php}
        """, "php}", r'upstream "php" is used by proxy; a group serves '
        r'proxy or fastcgi, not both$', nth=2)


def test_second_handler_refused(tmp_path):
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            root: {prefix}
            locations:
              /:
                return: 204
                fastcgi: {pass: "127.0.0.1:9000"}
        """, "return: 204", r'"fastcgi" conflicts with another one')


def test_http2_request(eddy):
    h2util = pytest.importorskip("h2util")
    with FcgiServer(lambda req, c: c.sendall(response(
            b"Content-Type: text/plain\r\nX-A: 1\r\n\r\n", b"h2 body"))
            is None and False) as srv:
        e = eddy("""
            workers: 1
            servers:
              - listen: {address: 127.0.0.1:{port}, http2: true}
                locations:
                  /:
                    fastcgi: {pass: "%s", check_script: false}
        """ % srv.pass_)
        c = h2util.H2(e.port)
        r = c.get("/x.php?a=1", authority="example.test")
        assert dict(r.headers)[":status"] == "200"
        assert dict(r.headers)["x-a"] == "1"
        assert r.body == b"h2 body"
        p = srv.requests[0].params
        assert p["HTTP_HOST"] == "example.test"
        assert p["SERVER_PROTOCOL"] == "HTTP/2.0"
        assert p["QUERY_STRING"] == "a=1"
        # A body without content-length: its length is learned.
        sid = c.request("/y.php", method="POST", body=b"abcdef")
        r = c.wait(sid)
        assert dict(r.headers)[":status"] == "200"
        p = srv.requests[1].params
        assert p["CONTENT_LENGTH"] == "6"
        assert srv.requests[1].stdin == b"abcdef"
        c.close()


def test_http2_short_body_resets_stream(eddy):
    h2util = pytest.importorskip("h2util")
    answer = response(b"Content-Length: 50\r\n\r\n", b"short")
    with FcgiServer(lambda req, c: c.sendall(answer) is None and False) \
            as srv:
        e = eddy("""
            workers: 1
            servers:
              - listen: {address: 127.0.0.1:{port}, http2: true}
                locations:
                  /:
                    fastcgi: {pass: "%s", check_script: false}
        """ % srv.pass_)
        c = h2util.H2(e.port)
        r = c.get("/x")
        assert r.reset == h2util.INTERNAL_ERROR
        assert not r.ended
        c.close()


def test_dump_round_trip_and_man_page(prefix):
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text("""
workers: 1
pid_file: logs/eddy.pid
upstreams:
  php:
    servers: ["unix:/run/php.sock"]
    keepalive: 2
servers:
  - listen: 127.0.0.1:18472
    root: /tmp
    locations:
      '~ \\.php(/|$)':
        fastcgi:
          pass: php
          split_path_info: '^(.+?\\.php)(/.*)$'
          index: index.php
          params: {APP_ENV: prod, SERVER_SOFTWARE: ~, EMPTY: "",
                   SCRIPT_FILENAME: $realpath_root$fastcgi_script_name}
""")
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-T"], cwd=prefix)
    assert rc == 0, err
    assert "        fastcgi:\n          pass: php\n" in out
    assert "          check_script: true\n" in out
    assert "          buffer_size: 64k\n" in out
    again = prefix / "conf" / "dumped.yaml"
    again.write_text(out)
    rc, out2, err = run_eddy(["-p", prefix, "-c", again, "-T"], cwd=prefix)
    assert rc == 0, err
    strip = lambda t: [ln for ln in t.splitlines()  # noqa: E731
                       if not ln.startswith("#")]
    assert strip(out2) == strip(out)
    page = (prefix.__class__(__file__).resolve().parents[2] / "doc"
            / "eddy.yaml.5").read_text()
    for key in ("fastcgi", "split_path_info", "check_script", "params",
                "index", "buffer_size"):
        assert ".It Ic %s " % key in page, key


def test_memory_estimate_counts_fastcgi_buffers(prefix):
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text("""
workers: 1
pid_file: logs/eddy.pid
servers:
  - listen: 127.0.0.1:18473
    locations:
      /:
        fastcgi: {pass: "unix:/run/php.sock", check_script: false,
                  buffer_size: 32k}
""")
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)
    assert rc == 0, err
    assert "8 KiB head, 96 KiB fastcgi buffers" in out + err
