"""auth_request (modules-2.md): a subrequest to another location of the
server, through the proxy machinery (pooled upstream connections,
timeouts), decides whether a request goes on; `internal: true`
locations; $auth_status; the -t errors."""

import socket
import threading
import time

from conftest import check_config_error, read_response, run_eddy, \
    split_response
from proxy_backend import Backend, TAKEN, response


def conf(text, **ports):
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


# An auth location proxied to AUTH, the protected one proxied to APP.
CONFIG = """
    workers: 1
    upstreams:
      auth:
        keepalive: 4
        servers: [127.0.0.1:@AUTH@]
      app:
        servers: [127.0.0.1:@APP@]
    servers:
      - listen: 127.0.0.1:{port}
        auth_request:
          uri: /_auth
          timeout: @TIMEOUT@
          copy_headers: [X-User]
        locations:
          /_auth:
            internal: true
            proxy: {pass: auth}
          /:
            proxy:
              pass: app
              set_headers: {X-Auth-Status: "$auth_status"}
          /var:
            return: {status: 200, body: "user=$http_x_user status=$auth_status"}
"""


def start(eddy, auth, app, timeout="5s"):
    return eddy(conf(CONFIG, AUTH=auth.port, APP=app.port, TIMEOUT=timeout))


def answer(status, headers=(), body=b""):
    def handler(req, conn):
        return response(status, body, headers=headers)
    return handler


def ok_app(req, conn):
    return response(200, b"app:" + req.target.encode())


def test_2xx_passes_with_copied_header_and_spoof_removed(eddy):
    with Backend(answer(204, [("X-User", "alice")])) as auth, \
            Backend(ok_app) as app:
        e = start(eddy, auth, app)
        r = e.get("/page?q=1", headers={"X-User": "mallory",
                                        "Authorization": "Bearer t"})
        assert r.status == 200
        assert r.body == b"app:/page?q=1"
        up = app.requests[0]
        # The answer's value replaced the client's, once.
        assert up.header_all("X-User") == ["alice"]
        assert up.header("X-Auth-Status") == "204"
        assert up.header("Authorization") == "Bearer t"
        # A variable reads the copied header too.
        r = e.get("/var", headers={"X-User": "mallory"})
        assert r.status == 200
        assert r.body == b"user=alice status=204"


def test_spoofed_header_removed_when_answer_lacks_it(eddy):
    with Backend(answer(200)) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        r = e.get("/x", headers={"X-User": "mallory"})
        assert r.status == 200
        assert app.requests[0].header_all("X-User") == []


def test_401_keeps_www_authenticate(eddy):
    with Backend(answer(401, [("WWW-Authenticate", 'Bearer realm="api"'),
                              ("X-Other", "no")])) as auth, \
            Backend(ok_app) as app:
        e = start(eddy, auth, app)
        r = e.get("/x")
        assert r.status == 401
        assert r.header("WWW-Authenticate") == 'Bearer realm="api"'
        assert r.header("X-Other") is None
        assert app.requests == []


def test_403(eddy):
    with Backend(answer(403)) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        r = e.get("/x")
        assert r.status == 403
        assert app.requests == []


def test_unexpected_status_is_500_logged(eddy):
    with Backend(answer(302, [("Location", "/login")])) as auth, \
            Backend(ok_app) as app:
        e = start(eddy, auth, app)
        r = e.get("/x")
        assert r.status == 500
        assert r.header("Location") is None
        assert app.requests == []
        assert "auth request unexpected status 302" in e.all_logs()
        # The line names the client's request and the subrequest.
        line = [ln for ln in e.all_logs().splitlines()
                if "unexpected status 302" in ln][0]
        assert 'request: "GET /x HTTP/1.1"' in line


def test_hung_auth_server_times_out_500(eddy):
    hold = threading.Event()

    def hang(req, conn):
        hold.wait(10)
        return TAKEN

    with Backend(hang) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app, timeout="700ms")
        t0 = time.monotonic()
        r = e.get("/x")
        took = time.monotonic() - t0
        hold.set()
        assert r.status == 500
        # The timeout bounds the whole subrequest.
        assert 0.6 <= took < 2.5, took
        assert "auth request timed out" in e.all_logs()
        assert app.requests == []


def test_upstream_failure_is_500(eddy):
    with Backend(ok_app) as app:
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()

        class Dead:
            pass
        d = Dead()
        d.port = port
        e = start(eddy, d, app)
        r = e.get("/x")
        assert r.status == 500
        log = e.all_logs()
        assert "connect() to 127.0.0.1:%d failed" % port in log
        assert "auth request unexpected status 502" in log
        assert app.requests == []


def test_return_based_auth_location(eddy):
    with Backend(ok_app) as app:
        e = eddy(conf("""
            workers: 1
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /_yes:
                    return: 204
                  /_no:
                    return: 403
                  /open/:
                    auth_request: {uri: /_yes}
                    proxy: {pass: "http://127.0.0.1:@APP@"}
                  /closed/:
                    auth_request: {uri: /_no}
                    proxy: {pass: "http://127.0.0.1:@APP@"}
                  /off/:
                    auth_request: off
                    return: {status: 200, body: "no auth"}
            """, APP=app.port))
        r = e.get("/open/a")
        assert r.status == 200 and r.body == b"app:/open/a"
        assert e.get("/closed/a").status == 403
        assert e.get("/off/").body == b"no auth"
        assert len(app.requests) == 1


def test_internal_location_is_404_directly(eddy):
    with Backend(answer(204)) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        r = e.get("/_auth")
        assert r.status == 404
        # Not even asked: a client cannot reach it.
        assert auth.requests == []
        # The same location answers the subrequest.
        assert e.get("/y").status == 200
        assert len(auth.requests) == 1


def test_subrequest_head_carries_original_uri_method_and_headers(eddy):
    with Backend(answer(204)) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        s = e.connect()
        body = b"secret-body"
        s.sendall(b"POST /upload/f%20x?a=1 HTTP/1.1\r\n"
                  b"Host: example.com\r\n"
                  b"Cookie: sid=42\r\n"
                  b"Connection: keep-alive, X-Hop\r\n"
                  b"X-Hop: h\r\n"
                  b"X-Original-URI: /spoof\r\n"
                  b"Content-Type: text/plain\r\n"
                  b"Content-Length: " + str(len(body)).encode()
                  + b"\r\n\r\n" + body)
        status, headers, rbody = split_response(read_response(s))
        s.close()
        assert status == 200
        q = auth.requests[0]
        assert q.method == "GET"
        assert q.target == "/_auth"
        assert q.header("Host") == "example.com"
        assert q.header("Cookie") == "sid=42"
        assert q.header_all("X-Original-URI") == ["/upload/f%20x?a=1"]
        assert q.header("X-Original-Method") == "POST"
        assert q.header("X-Hop") is None
        assert q.header("Content-Length") is None
        assert q.header("Transfer-Encoding") is None
        assert q.raw_body == b""
        # The request itself went on with its body.
        assert app.requests[0].body == body


def test_no_100_continue_before_auth_passes(eddy):
    gate = threading.Event()

    def slow_ok(req, conn):
        gate.wait(5)
        return response(204)

    with Backend(slow_ok) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        s = e.connect()
        s.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert auth.wait_requests(1)
        s.settimeout(0.5)
        try:
            early = s.recv(100)
        except socket.timeout:
            early = b""
        assert early == b""
        gate.set()
        s.settimeout(5)
        got = s.recv(100)
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n"), got
        s.sendall(b"hello")
        status, headers, rbody = split_response(read_response(s))
        s.close()
        assert status == 200
        assert app.requests[0].body == b"hello"


def test_refused_with_100_continue_never_reads_body(eddy):
    with Backend(answer(403)) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        s = e.connect()
        s.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        status, headers, rbody = split_response(read_response(s))
        s.close()
        assert status == 403
        assert app.requests == []


def test_keepalive_pool_reused_for_subrequests(eddy):
    with Backend(answer(204, body=b"")) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        for i in range(4):
            assert e.get("/n%d" % i).status == 200
        assert len(auth.requests) == 4
        # One upstream connection served every subrequest.
        assert auth.connections == 1
        assert {q.conn_index for q in auth.requests} == {0}


def test_large_auth_body_dropped_verdict_stands(eddy):
    big = b"x" * (200 * 1024)
    with Backend(answer(200, body=big)) as auth, Backend(ok_app) as app:
        e = start(eddy, auth, app)
        assert e.get("/a").status == 200
        assert e.get("/b").status == 200
        # Over 64 KiB: the connection is closed, not read to its end.
        assert auth.connections == 2


def test_config_errors(prefix):
    base = """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /_auth:
                %s
              /:
                auth_request: {uri: %s%s}
                return: 200
    """
    check_config_error(prefix, base % ("return: 204", "/_auth?x=1", ""),
                       "/_auth?x=1", r"expected a path")
    check_config_error(prefix, base % ("return: 204", "_auth", ""),
                       "_auth}", r"expected a path")
    check_config_error(prefix, base % ("root: html", "/_auth", ""),
                       "/_auth}", r'auth_request uri "/_auth" is answered '
                       r'in server #1 by location "/_auth", whose handler '
                       r'is neither proxy nor return')
    check_config_error(prefix, (base % ("return: 204", "/nowhere", ""))
                       .replace("/:", "/app/:"),
                       "/nowhere", r"by no location, whose handler is "
                       r"neither proxy nor return")
    for name in ("Host", "content-length", "Connection", "Upgrade",
                 "Transfer-Encoding"):
        check_config_error(prefix, base % ("return: 204", "/_auth",
                                           ", copy_headers: [X-A, %s]"
                                           % name),
                           name + "]", r'copy_headers: "%s" may not be '
                           r"copied" % name)
    check_config_error(prefix, base % ("return: 204", "/_auth",
                                       ", timeout: soon"),
                       "soon", r"timeout")
    check_config_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                auth_request: /auth
                return: 200
    """, "/auth", r"nginx's auth_request string is uri")
    check_config_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            internal: true
            locations:
              /:
                return: 200
    """, "internal", r"internal")


def test_dump_shows_keys(prefix):
    for d in ("conf", "logs"):
        (prefix / d).mkdir(exist_ok=True)
    conf_file = prefix / "conf" / "eddy.yaml"
    conf_file.write_text("""
servers:
  - listen: 127.0.0.1:1
    locations:
      /_a:
        internal: true
        return: 204
      /:
        auth_request: {uri: /_a, copy_headers: [X-User]}
        return: 200
""")
    rc, out, err = run_eddy(["-p", prefix, "-c", conf_file, "-T"],
                            cwd=prefix)
    assert rc == 0, err
    assert "internal: true" in out
    assert "auth_request:" in out
    assert "timeout: 5s" in out
