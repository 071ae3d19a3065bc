"""fastcgi against a real php-fpm (fastcgi-cgi.md): meta-variables,
params, bodies both ways, the CGI head (Status, local and client
redirects, bad heads), stderr, timeouts, keep-alive, check_script,
split_path_info, a php-fpm that dies."""

import hashlib
import json
import os
import re
import socket
import time

import pytest

from conftest import read_until_close, wait_for
from fcgiutil import PhpFpm

SCRIPTS = {
    "env.php": "<?php header('Content-Type: application/json');"
               " echo json_encode($_SERVER);",
    "body.php": "<?php $n = 0; $h = hash_init('sha256');"
                " $in = fopen('php://input', 'rb');"
                " while (!feof($in)) { $b = fread($in, 65536);"
                " $n += strlen($b); hash_update($h, $b); }"
                " echo $n, ' ', hash_final($h), ' ',"
                " $_SERVER['CONTENT_LENGTH'] ?? '-';",
    "status.php": "<?php header('Status: 404 Gone Away');"
                  " header('X-App: yes'); echo 'not here';",
    # PHP turns a Location into a 302 unless told the status.
    "local.php": "<?php header('Location: /env.php?from=local', true, 200);"
                 " echo 'x';",
    "client.php": "<?php header('Location: http://example.com/next');",
    "moved.php": "<?php header('Status: 301'); header('Location: /elsewhere');",
    "loop.php": "<?php header('Location: /loop.php', true, 200);",
    "bad.php": "<?php header('Bad Name: x');",
    "err.php": "<?php error_log('boom'); echo 'ok';",
    "fatal.php": "<?php echo 'partial'; undefined_function_x();",
    "fatal0.php": "<?php undefined_function_y();",
    "sleep.php": "<?php sleep(3); echo 'late';",
    "flush.php": "<?php echo 'first'; flush(); sleep(1); echo 'second';",
    "short.php": "<?php header('Content-Length: 100'); echo 'only this';",
    "long.php": "<?php header('Content-Length: 3'); echo 'abcdef';",
    "pid.php": "<?php echo getmypid();",
    "notype.php": "<?php header_remove('Content-Type');"
                  " header('Content-Type:'); echo 'raw';",
    "hop.php": "<?php header('Connection: x-drop');"
               " header('X-Drop: 1'); header('X-Keep: 2');"
               " header('Keep-Alive: timeout=5'); echo 'h';",
    "sub/index.php": "<?php echo 'index of sub';",
}


@pytest.fixture(scope="module")
def fpm():
    f = PhpFpm(SCRIPTS)
    yield f
    f.stop()


def config(fpm, block="", extra="", upstream="", server=""):
    return """
        workers: 1
        error_log: {prefix}/logs/error.log
        %s
        servers:
          - listen: 127.0.0.1:{port}
            root: %s
            client_max_body_size: 64m
            %s
            locations:
              /:
                return: {status: 200, body: "static /\\n"}
              /elsewhere:
                return: {status: 200, body: "elsewhere\\n"}
              '~ \\.php(/|$)':
                fastcgi:
                  pass: %s
                  %s
              %s
    """ % (upstream, fpm.root, server, "php" if upstream else fpm.pass_,
           block, extra)


UPSTREAM = """
        upstreams:
          php:
            servers: ["%s"]
            keepalive: %d
"""


def dechunk(body):
    out = b""
    while True:
        size, rest = body.split(b"\r\n", 1)
        n = int(size, 16)
        if n == 0:
            return out
        out += rest[:n]
        body = rest[n + 2:]


def env_of(r):
    assert r.status == 200, r
    return json.loads(r.body)


def test_meta_variables(eddy, fpm):
    e = eddy(config(fpm, block="""
                  split_path_info: '^(.+?\\.php)(/.*)$'
                  params:
                    APP_ENV: production
                    EMPTY: ""
                    UNSET: $http_x_nothing
                    SERVER_SOFTWARE: ~
                    TWO: "$request_method-$args"
    """))
    r = e.request("POST", "/env.php/extra/path?a=1&b=2",
                  headers={"Host": "Example.test:81", "Content-Type":
                           "text/plain", "Proxy": "http://evil/",
                           "X_Foo": "under", "Cookie": "a=1",
                           "X-Multi": "one"}, body=b"12345")
    env = env_of(r)
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REQUEST_SCHEME"] == "http"
    assert env["SERVER_NAME"] == "example.test"
    assert env["SERVER_ADDR"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(e.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert int(env["REMOTE_PORT"]) > 0
    assert env["REQUEST_METHOD"] == "POST"
    assert env["REQUEST_URI"] == "/env.php/extra/path?a=1&b=2"
    assert env["QUERY_STRING"] == "a=1&b=2"
    assert env["SCRIPT_NAME"] == "/env.php"
    assert env["SCRIPT_FILENAME"] == fpm.root + "/env.php"
    assert env["PATH_INFO"] == "/extra/path"
    assert env["PATH_TRANSLATED"] == fpm.root + "/extra/path"
    assert env["DOCUMENT_ROOT"] == fpm.root
    assert env["DOCUMENT_URI"] == "/env.php/extra/path"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert env["REDIRECT_STATUS"] == "200"
    assert env["HTTP_HOST"] == "Example.test:81"
    assert env["HTTP_COOKIE"] == "a=1"
    assert env["HTTP_X_MULTI"] == "one"
    assert env["APP_ENV"] == "production"
    assert env["EMPTY"] == ""
    assert env["TWO"] == "POST-a=1&b=2"
    # Left out: httpoxy, '_' names, TLS, a removed default, a param
    # whose variable has no value, the body's own fields.
    for name in ("HTTP_PROXY", "HTTP_X_FOO", "HTTPS", "SERVER_SOFTWARE",
                 "UNSET", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
        assert name not in env, name


def test_meta_repeats_and_underscores(eddy, fpm):
    e = eddy(config(fpm, server="underscores_in_headers: true"))
    # Raw: http.client would join nothing itself.
    s = e.connect()
    s.sendall(b"GET /env.php HTTP/1.1\r\nHost: h\r\nAccept: a\r\n"
              b"Accept: b\r\nCookie: c=1\r\nCookie: d=2\r\nX_Foo: u\r\n"
              b"X-Foo: d\r\nX_Bar: only\r\nConnection: close\r\n\r\n")
    data, closed = read_until_close(s)
    s.close()
    body = data.split(b"\r\n\r\n", 1)[1]
    # Chunked: the JSON is in the first chunk.
    env = json.loads(body.split(b"\r\n", 2)[1])
    assert env["HTTP_ACCEPT"] == "a, b"
    assert env["HTTP_COOKIE"] == "c=1; d=2"
    assert env["HTTP_X_FOO"] == "d"
    assert env["HTTP_X_BAR"] == "only"
    assert env["SERVER_SOFTWARE"].startswith("eddy/")


def test_large_post_streams_intact(eddy, fpm):
    e = eddy(config(fpm))
    data = os.urandom(1 << 20) * 10
    r = e.request("POST", "/body.php", body=data, timeout=30)
    assert r.status == 200
    n, digest, cl = r.text.split()
    assert int(n) == len(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert cl == str(len(data))


def test_large_post_rss_flat(eddy, fpm):
    """The body streams: the worker's memory does not grow with it."""
    e = eddy(config(fpm))
    pid = e.worker_pids()[0]

    def rss():
        with open("/proc/%d/status" % pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    e.request("POST", "/body.php", body=b"x" * 100000)
    before = rss()
    data = b"y" * (24 << 20)
    r = e.request("POST", "/body.php", body=data, timeout=30)
    assert r.status == 200 and r.text.split()[0] == str(len(data))
    assert rss() - before < 8 * 1024, (before, rss())


def test_chunked_body_learns_length(eddy, fpm):
    e = eddy(config(fpm, block="buffer_size: 4k"))
    body = b"k" * 1024
    s = e.connect()
    s.sendall(b"POST /body.php HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n400\r\n" + body
              + b"\r\n0\r\n\r\n")
    data, closed = read_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data
    assert dechunk(data.split(b"\r\n\r\n", 1)[1]) == \
        b"1024 %s 1024" % hashlib.sha256(body).hexdigest().encode()
    # Over buffer_size: 411, the application never called.
    before = fpm.access_log().count("/body.php")
    s = e.connect()
    s.sendall(b"POST /body.php HTTP/1.1\r\nHost: h\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n1400\r\n" + b"z" * 5120
              + b"\r\n0\r\n\r\n")
    data, closed = read_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 411"), data
    assert "a request body of unknown length over 4096 bytes" in e.error_log
    assert fpm.access_log().count("/body.php") == before


def test_status_and_headers(eddy, fpm):
    e = eddy(config(fpm))
    r = e.get("/status.php")
    assert r.status == 404
    assert r.header("X-App") == "yes"
    assert r.body == b"not here"
    # error_pages do not apply to the application's answers.
    r = e.get("/hop.php")
    assert r.status == 200 and r.header("X-Keep") == "2"
    assert r.header("X-Drop") is None and r.header("Keep-Alive") is None
    assert r.header("Connection") != "x-drop"


def test_no_content_type_sent_when_none(eddy, fpm):
    e = eddy(config(fpm))
    r = e.get("/notype.php")
    assert r.status == 200 and r.body == b"raw"
    assert r.header("Content-Type") is None


def test_local_redirect_is_internal(eddy, fpm):
    e = eddy(config(fpm))
    r = e.request("POST", "/local.php?q=1", body=b"abc")
    env = env_of(r)
    assert env["REQUEST_METHOD"] == "GET"
    assert env["QUERY_STRING"] == "from=local"
    assert env["SCRIPT_NAME"] == "/env.php"
    assert "CONTENT_LENGTH" not in env
    # HEAD stays HEAD.
    r = e.request("HEAD", "/local.php")
    assert r.status == 200 and r.body == b""
    assert "HEAD /env.php" in fpm.access_log()


def test_local_redirect_loop_500(eddy, fpm):
    e = eddy(config(fpm))
    r = e.get("/loop.php")
    assert r.status == 500
    assert "rewrite or internal redirection cycle while redirecting to " \
           "\"/loop.php\"" in e.error_log


def test_client_redirect(eddy, fpm):
    e = eddy(config(fpm))
    r = e.get("/client.php")
    assert r.status == 302
    assert r.header("Location") == "http://example.com/next"
    # A local path with a Status goes out as it is.
    r = e.get("/moved.php")
    assert r.status == 301 and r.header("Location") == "/elsewhere"


def test_bad_head_502(eddy, fpm):
    e = eddy(config(fpm))
    r = e.get("/bad.php")
    assert r.status == 502
    assert re.search(r"\[error\] .*upstream unix:%s sent an invalid response "
                     r"head \(upstream \"unix:%s\"\), client: 127\.0\.0\.1"
                     % (re.escape(fpm.sock), re.escape(fpm.sock)),
                     e.error_log)


def test_short_content_length_closes(eddy, fpm):
    e = eddy(config(fpm))
    s = e.connect()
    s.sendall(b"GET /short.php HTTP/1.1\r\nHost: h\r\n\r\n")
    data, closed = read_until_close(s)
    s.close()
    assert closed
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"Content-Length: 100" in head
    assert body == b"only this"
    assert "sent 91 bytes less than its Content-Length" in e.error_log


def test_extra_bytes_dropped(eddy, fpm):
    e = eddy(config(fpm))
    r = e.get("/long.php")
    assert r.status == 200 and r.body == b"abc"
    assert "sent more than its Content-Length of 3 bytes" in e.error_log


def test_stderr_logged_with_request(eddy, fpm):
    e = eddy(config(fpm, upstream=UPSTREAM % (fpm.pass_, 0)))
    r = e.get("/err.php")
    assert r.status == 200 and r.body == b"ok"
    assert wait_for(lambda: "boom" in e.error_log, 3)
    assert re.search(r"\[error\] .*fastcgi stderr from unix:%s: \"PHP "
                     r"message: boom\" \(upstream \"php\"\), client: "
                     r"127\.0\.0\.1, server: .*request: \"GET /err\.php "
                     r"HTTP/1\.1\"" % re.escape(fpm.sock), e.error_log)


def test_fatal_error(eddy, fpm):
    # Before any output, PHP answers "Status: 500" with no body
    # (display_errors off) and reports the error on FCGI_STDERR: the
    # client gets the 500, the log gets PHP's line with the request.
    e = eddy(config(fpm))
    r = e.get("/fatal0.php")
    assert r.status == 500 and b"undefined_function" not in r.body, r
    assert wait_for(lambda: "undefined_function_y" in e.error_log, 3)
    assert re.search(r"\[error\] .*fastcgi stderr from unix:%s: \"PHP "
                     r"message: PHP Fatal error:  Uncaught Error: Call to "
                     r"undefined function undefined_function_y\(\).*"
                     r"request: \"GET /fatal0\.php HTTP/1\.1\""
                     % re.escape(fpm.sock), e.error_log)
    # After output went, the status stays 200 and the body holds what was
    # written; the response ends cleanly (the application ended it).
    r = e.get("/fatal.php")
    assert r.status == 200 and r.body == b"partial", r
    assert wait_for(lambda: "undefined_function_x" in e.error_log, 3)
    # The application is still there for the next request.
    assert e.get("/err.php").body == b"ok"


def test_read_timeout_504(eddy, fpm):
    e = eddy(config(fpm, upstream=UPSTREAM % (fpm.pass_, 0),
                    block="read_timeout: 500ms"))
    t = time.monotonic()
    r = e.get("/sleep.php")
    assert r.status == 504
    assert time.monotonic() - t < 2.5
    assert "upstream timed out while reading from unix:%s (upstream " \
           "\"php\")" % fpm.sock in e.error_log


def test_flush_streams(eddy, fpm):
    e = eddy(config(fpm))
    s = e.connect()
    s.sendall(b"GET /flush.php HTTP/1.1\r\nHost: h\r\nConnection: close"
              b"\r\n\r\n")
    s.settimeout(0.8)
    got = b""
    while b"first" not in got:
        got += s.recv(4096)
    assert b"second" not in got
    got += read_until_close(s)[0]
    s.close()
    assert b"second" in got


def test_keepalive_one_connection(eddy, fpm):
    e = eddy(config(fpm, upstream=UPSTREAM % (fpm.pass_, 1)))
    pids = set()
    for _ in range(100):
        r = e.get("/pid.php")
        assert r.status == 200
        pids.add(r.body)
    # One kept connection pins one child (pm.max_children 2).
    assert len(pids) == 1, pids


def test_check_script_404_without_app(eddy, fpm):
    e = eddy(config(fpm))
    before = fpm.access_log()
    r = e.get("/missing.php")
    assert r.status == 404
    assert "fastcgi script \"%s/missing.php\" is not a regular file" \
        % fpm.root in e.error_log
    r = e.get("/sub.php/x")
    assert r.status == 404
    assert fpm.access_log() == before
    # Hidden segments are not scripts; check_script false sends all.
    os.makedirs(fpm.root + "/.git", exist_ok=True)
    fpm.write(".git/x.php", "<?php echo 'hidden';")
    assert e.get("/.git/x.php").status == 404
    e2 = eddy(config(fpm, block="check_script: false"))
    r = e2.get("/missing.php")
    assert r.status == 404
    assert "missing.php" in fpm.access_log()


def test_index(eddy, fpm):
    e = eddy(config(fpm, extra="""
              /sub/:
                fastcgi: {pass: "%s", index: index.php}
    """ % fpm.pass_))
    r = e.get("/sub/")
    assert r.status == 200 and r.body == b"index of sub"


def test_root_override_and_document_root(eddy, fpm):
    e = eddy(config(fpm, block="root: %s" % fpm.root).replace(
        "root: %s" % fpm.root, "root: /tmp", 1))
    env = env_of(e.get("/env.php"))
    assert env["DOCUMENT_ROOT"] == fpm.root


def test_php_fpm_killed_502(eddy, tmp_path):
    f = PhpFpm(SCRIPTS)
    try:
        e = eddy(config(f))
        assert e.get("/pid.php").status == 200
        s = e.connect()
        s.sendall(b"GET /sleep.php HTTP/1.1\r\nHost: h\r\n\r\n")
        time.sleep(0.5)
        f.kill()
        data, closed = read_until_close(s)
        s.close()
        assert data.startswith(b"HTTP/1.1 502"), data
        assert "closed the connection without a response" in e.error_log
        r = e.get("/pid.php")
        assert r.status == 502
        assert "connect() to unix:%s failed" % f.sock in e.error_log
    finally:
        f.stop()


def test_head_request(eddy, fpm):
    e = eddy(config(fpm))
    r = e.request("HEAD", "/status.php")
    assert r.status == 404 and r.body == b""
    assert r.header("X-App") == "yes"


def test_http10_close_delimited(eddy, fpm):
    e = eddy(config(fpm))
    s = e.connect()
    s.sendall(b"GET /pid.php HTTP/1.0\r\n\r\n")
    data, closed = read_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200")
    assert data.split(b"\r\n\r\n", 1)[1].isdigit()


def test_variables_in_access_log(eddy, fpm):
    e = eddy(config(fpm, block="split_path_info: '^(.+?\\.php)(/.*)$'")
             .replace("error_log: {prefix}/logs/error.log",
                      "error_log: {prefix}/logs/error.log\n        "
                      "access_log: {path: logs/access.log, format: "
                      "\"$document_root|$fastcgi_script_name|"
                      "$fastcgi_path_info|$document_uri|$https|"
                      "$upstream_addr\"}"))
    assert e.get("/pid.php/p/q").status == 200
    assert wait_for(lambda: e.log_text("logs/access.log"), 3)
    assert e.log_text("logs/access.log").strip() == \
        "%s|/pid.php|/p/q|/pid.php/p/q||unix:%s" % (fpm.root, fpm.sock)


def test_realpath_root(eddy, fpm, tmp_path):
    link = str(tmp_path / "link")
    os.symlink(fpm.root, link)
    os.chmod(str(tmp_path), 0o755)
    e = eddy(config(fpm, block="""
                  root: %s
                  check_script: false
                  params: {SCRIPT_FILENAME: $realpath_root$fastcgi_script_name,
                           LINKED: $document_root}
    """ % link))
    env = env_of(e.get("/env.php"))
    assert env["SCRIPT_FILENAME"] == fpm.root + "/env.php"
    assert env["LINKED"] == link


def test_unix_socket_refused_is_502_at_once(eddy, tmp_path):
    path = str(tmp_path / "none.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                fastcgi: {pass: "unix:%s", check_script: false}
    """ % path)
    t = time.monotonic()
    assert e.get("/x.php").status == 502
    assert time.monotonic() - t < 1


def test_local_redirect_logs_client_request_line(eddy, fpm):
    e = eddy(config(fpm).replace(
        "error_log: {prefix}/logs/error.log",
        "error_log: {prefix}/logs/error.log\n        access_log: {path: "
        "logs/access.log, format: \"$request|$request_method|$uri\"}"))
    r = e.request("POST", "/local.php?q=1", body=b"abc")
    assert r.status == 200
    assert wait_for(lambda: e.log_text("logs/access.log"), 3)
    assert e.log_text("logs/access.log").strip() == \
        "POST /local.php?q=1 HTTP/1.1|GET|/env.php"
