"""fastcgi under attack (fastcgi-cgi.md): a hostile client and a hostile or
broken FastCGI application against the real binary. Each test pins what
must hold: no response of one client reaching another on a pooled
connection, bounded memory, params the client cannot forge, scripts
checked as they are run, access rules on local redirects."""

import socket
import time

import pytest

from conftest import read_until_close
from fcgiutil import FcgiServer, end, response, stdout

HEAD = b"Content-Type: text/plain\r\n\r\n"


def config(srv, keepalive=0, block="", extra="", server=""):
    return """
        workers: 1
        error_log: {prefix}/logs/error.log
        upstreams:
          app:
            servers: ["%s"]
            keepalive: %d
        servers:
          - listen: 127.0.0.1:{port}
            max_header_size: 256k
            %s
            locations:
              /:
                fastcgi:
                  pass: app
                  check_script: false
                  read_timeout: 3s
                  %s
              %s
    """ % (srv.pass_, keepalive, server, block, extra)


def replying(data, keep=False):
    def handler(req, conn):
        conn.sendall(data)
        return keep
    return handler


def test_local_redirect_obeys_access_of_new_location(eddy):
    with FcgiServer(replying(response(b"Location: /private/x\r\n\r\n"))) \
            as srv:
        e = eddy(config(srv, extra="""
              /private/:
                access: [{deny: all}]
                return: {status: 200, body: "secret\\n"}
        """))
        r = e.get("/x")
        assert r.status == 403, r
        assert b"secret" not in r.body


def test_long_param_name_four_byte_lengths(eddy):
    with FcgiServer(replying(response(HEAD, b"ok"))) as srv:
        e = eddy(config(srv))
        name = "X-" + "n" * 300
        r = e.get("/x", headers={name: "v" * 70000, "X-Small": "s"})
        assert r.status == 200
        p = srv.requests[0].params
        assert p["HTTP_X_" + "N" * 300] == "v" * 70000
        assert p["HTTP_X_SMALL"] == "s"


def script_config(srv, root, block=""):
    return config(srv, server="root: %s" % root, block="""
                  check_script: true
                  split_path_info: '^(.+?\\.php)(/.*)$'
                  %s""" % block).replace("check_script: false", "")


@pytest.mark.parametrize("path", [
    "/evil.jpg%00.php", "/evil.jpg%00/x.php", "/up/evil.jpg/x.php",
    "/up/evil.jpg/x.php/y", "/%2e%2e/outside.php", "/up/..%2f..%2foutside.php",
    "/up/%2e%2e/%2e%2e/outside.php", "/.hidden.php",
    "/up/.%2e/.hidden.php",
])
def test_check_script_refuses(eddy, tmp_path, path):
    root = tmp_path / "www"
    (root / "up").mkdir(parents=True)
    (root / "evil.jpg").write_text("<?php system('id');")
    (root / "up" / "evil.jpg").write_text("<?php system('id');")
    (root / ".hidden.php").write_text("x")
    (tmp_path / "outside.php").write_text("x")
    with FcgiServer(replying(response(HEAD, b"ran"))) as srv:
        e = eddy(script_config(srv, root))
        r = e.get(path)
        assert r.status in (400, 403, 404), (path, r)
        assert srv.requests == []


def test_check_script_checks_the_file_sent(eddy, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "a.php").write_text("x")
    with FcgiServer(replying(response(HEAD, b"ran"))) as srv:
        e = eddy(script_config(srv, root))
        r = e.get("/a.php/extra/x.php?q")
        assert r.status == 200 and r.body == b"ran"
        p = srv.requests[0].params
        assert p["SCRIPT_FILENAME"] == str(root / "a.php")
        assert p["PATH_INFO"] == "/extra/x.php"
        r = e.get("/a.php", headers={"Script-Filename": "/etc/passwd",
                                     "Script_Filename": "/etc/passwd"})
        p = srv.requests[1].params
        assert p["SCRIPT_FILENAME"] == str(root / "a.php")
        assert p["HTTP_SCRIPT_FILENAME"] == "/etc/passwd"


def test_late_stdout_after_end_never_reaches_next_client(eddy):
    """The application writes more after END_REQUEST, later: the pooled
    connection is dropped, the next request gets its own answer."""
    n = [0]

    def handler(req, conn):
        n[0] += 1
        me = req.params["HTTP_X_WHO"].encode()
        conn.sendall(response(HEAD, b"for " + me))
        time.sleep(0.1)
        try:
            conn.sendall(response(HEAD, b"STALE"))
        except OSError:
            return False
        return True
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, keepalive=4))
        for i in range(4):
            r = e.get("/x", headers={"X-Who": "c%d" % i})
            assert r.status == 200 and r.body == b"for c%d" % i, r
            time.sleep(0.3)


def test_client_abort_mid_response_not_pooled(eddy):
    def handler(req, conn):
        if req.params["HTTP_X_WHO"] == "slow":
            conn.sendall(stdout(HEAD + b"a" * 1000))
            time.sleep(0.5)
            try:
                conn.sendall(stdout(b"LEFTOVER" * 1000) + stdout(b"")
                             + end())
            except OSError:
                return False
            return True
        conn.sendall(response(HEAD, b"fast"))
        return True
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, keepalive=4))
        s = e.connect()
        s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\nX-Who: slow\r\n\r\n")
        s.recv(100)
        s.close()
        time.sleep(0.1)
        for _ in range(3):
            r = e.get("/x", headers={"X-Who": "b"})
            assert r.status == 200 and r.body == b"fast", r


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.parametrize("size", [1, 4000])
def test_stdout_flood_to_slow_client_bounded(eddy, size):
    """Many records to a client that reads nothing: eddy stops reading
    the application; its memory stays bounded."""
    sent = [0]
    piece = stdout(b"z" * size)

    def handler(req, conn):
        conn.sendall(stdout(HEAD))
        conn.settimeout(20)
        try:
            while sent[0] < (64 << 20):
                conn.sendall(piece * 64)
                sent[0] += 64 * size
        except OSError:
            pass
        return False
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, block="buffer_size: 16k"))
        pid = e.worker_pids()[0]
        base = rss_kb(pid)
        s = e.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        time.sleep(2)
        grown = rss_kb(pid) - base
        s.close()
        assert grown < 8 * 1024, (grown, sent[0])


def h2_config(srv, keepalive=4, block=""):
    return config(srv, keepalive=keepalive, block=block).replace(
        "listen: 127.0.0.1:{port}",
        'listen: [{address: "127.0.0.1:{port}", http2: true}]')


def test_h2_reset_mid_response_not_pooled(eddy):
    from h2util import H2

    def handler(req, conn):
        if req.params.get("HTTP_X_WHO") == "slow":
            conn.sendall(stdout(HEAD + b"a" * 100))
            time.sleep(0.5)
            try:
                conn.sendall(stdout(b"LEFTOVER") + stdout(b"") + end())
            except OSError:
                return False
            return True
        conn.sendall(response(HEAD, b"fast"))
        return True
    with FcgiServer(handler) as srv:
        e = eddy(h2_config(srv))
        c = H2(e.port)
        sid = c.request("/x", headers=[("x-who", "slow")])
        deadline = time.monotonic() + 3
        while not c.streams[sid].body and time.monotonic() < deadline:
            c.recv(0.2)
        c.reset(sid)
        time.sleep(0.8)
        for _ in range(3):
            st = c.get("/x")
            assert st.status == 200 and st.body == b"fast", st
        c.close()


def test_h2_body_without_length(eddy):
    from h2util import H2
    with FcgiServer(replying(response(HEAD, b"ok"), keep=True)) as srv:
        e = eddy(h2_config(srv, block="buffer_size: 4k"))
        c = H2(e.port)
        st = c.get("/x", method="POST", body=b"q" * 3000)
        assert st.status == 200, st
        assert srv.requests[0].params["CONTENT_LENGTH"] == "3000"
        assert srv.requests[0].stdin == b"q" * 3000
        st = c.get("/x", method="POST", body=b"q" * 5000)
        assert st.status == 411, st
        st = c.get("/x", method="POST", body=b"w" * 10,
                   headers=[("content-length", "10")])
        assert st.status == 200, st
        assert srv.requests[-1].stdin == b"w" * 10
        c.close()


def test_try_files_post_reaches_application_with_body(eddy, tmp_path):
    with FcgiServer(replying(response(HEAD, b"ok"))) as srv:
        e = eddy(config(srv, extra="""
              /front/:
                static:
                  try_files: [$uri, /index.php]
                  methods: [GET, HEAD, POST]
        """, server="root: %s" % tmp_path))
        r = e.request("POST", "/front/a", body=b"payload")
        assert r.status == 200, r
        q = srv.requests[0]
        assert q.params["SCRIPT_NAME"] == "/index.php"
        assert q.stdin == b"payload"
        assert q.params["CONTENT_LENGTH"] == "7"


def test_content_length_twice_in_head_502(eddy):
    ans = response(b"Content-Length: 2\r\nContent-Length: 5\r\n\r\n", b"hello")
    with FcgiServer(replying(ans)) as srv:
        e = eddy(config(srv))
        assert e.get("/x").status == 502


def test_local_redirect_of_chunked_post_to_proxy_sends_no_body(eddy):
    """A chunked POST whose body fastcgi read whole (to learn its
    length), then a local redirect to a proxied location: the internal
    GET goes out without a body and without a framing that promises
    one."""
    from proxy_backend import Backend, response as http_response

    with Backend(lambda req, conn: http_response(200, b"proxied")) as b, \
            FcgiServer(replying(response(b"Location: /p/next\r\n\r\n"))) \
            as srv:
        e = eddy(config(srv, extra="""
              /p/:
                proxy: {pass: "http://%s", read_timeout: 2s}
        """ % b.addr))
        s = e.connect()
        s.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        got, _ = read_until_close(s, timeout=5)
        s.close()
        assert got.startswith(b"HTTP/1.1 200"), got
        assert got.endswith(b"proxied"), got
        assert len(b.requests) == 1
        head = b.requests[0].head.lower()
        assert head.startswith(b"get /p/next"), head
        assert b"transfer-encoding" not in head, head
        assert b"content-length" not in head or \
            b"content-length: 0" in head, head


def test_local_redirect_without_query_has_none(eddy):
    """Location: /p/next (no '?') restarts at a URI without a query: no
    "?" upstream; with a query, that query."""
    from proxy_backend import Backend, response as http_response

    def app(req, conn):
        if req.params["SCRIPT_NAME"] == "/q":
            conn.sendall(response(b"Location: /p/q?a=1\r\n\r\n"))
        else:
            conn.sendall(response(b"Location: /p/next\r\n\r\n"))
        return False
    with Backend(lambda req, conn: http_response(200, b"proxied")) as b, \
            FcgiServer(app) as srv:
        e = eddy(config(srv, extra="""
              /p/:
                proxy: {pass: "http://%s"}
        """ % b.addr))
        r = e.get("/x?orig=1")
        assert r.status == 200 and r.body == b"proxied"
        assert b.requests[0].head.startswith(b"GET /p/next HTTP/1.1\r\n"), \
            b.requests[0].head
        r = e.get("/q?orig=1")
        assert b.requests[1].head.startswith(b"GET /p/q?a=1 HTTP/1.1\r\n")


def two_servers(bad, good, block):
    return config(bad, block=block).replace(
        'servers: ["%s"]' % bad.pass_,
        'servers: ["%s", "%s"]\n            balance: round_robin'
        % (bad.pass_, good.pass_))


@pytest.mark.parametrize("chunked", [False, True])
def test_retry_after_partial_send_resends_whole_body(eddy, chunked):
    """The first application reads the params and part of the body, then
    drops the connection: the PUT goes to the next one whole, once."""
    def bad(req, conn):
        conn.recv(100)
        return False
    body = bytes(range(256)) * 12
    with FcgiServer(bad, want_stdin=False) as b, \
            FcgiServer(replying(response(HEAD, b"good"))) as g:
        e = eddy(two_servers(b, g, "next_upstream: [error]\n"
                             "                  buffer_size: 8k"))
        for _ in range(2):
            if chunked:
                s = e.connect()
                s.sendall(b"PUT /x HTTP/1.1\r\nHost: h\r\nConnection: close"
                          b"\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s"
                          b"\r\n0\r\n\r\n" % (len(body), body))
                got, _ = read_until_close(s)
                s.close()
                assert got.startswith(b"HTTP/1.1 200"), got
            else:
                r = e.request("PUT", "/x", body=body)
                assert r.status == 200 and r.body == b"good", r
        assert [q.stdin for q in g.requests] == [body, body]
        assert all(q.params["CONTENT_LENGTH"] == str(len(body))
                   for q in g.requests)


def test_local_redirect_mid_body_then_pipelined(eddy):
    """The application redirects before reading the body: what is left of
    the body is discarded, never read as a request."""
    def app(req, conn):
        conn.sendall(response(b"Location: /r/next\r\n\r\n"))
        return False
    with FcgiServer(app, want_stdin=False) as srv:
        e = eddy(config(srv, extra="""
              /r/:
                return: {status: 200, body: "redirected $uri\\n"}
        """))
        s = e.connect()
        inner = b"GET /r/smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
        body = inner * 2000
        s.sendall(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n"
                  b"\r\n" % len(body) + body[:1000])
        time.sleep(0.3)
        s.sendall(body[1000:] + b"GET /r/second HTTP/1.1\r\nHost: h\r\n"
                  b"Connection: close\r\n\r\n")
        got, _ = read_until_close(s, timeout=5)
        s.close()
        assert got.count(b"HTTP/1.1 200") == 2, got
        assert b"redirected /r/next" in got
        assert b"redirected /r/second" in got
        assert b"smuggled" not in got


def test_head_line_a_byte_a_record_is_linear(eddy):
    """A 1 MB head line sent one byte per STDOUT record: the head parser
    scans each byte once (it used to rescan the line for every record,
    ~6 s of a stalled worker here; 64 MiB buffer_size: hours)."""
    n = 1000000
    head = b"X-Long: " + b"a" * n + b"\r\nContent-Type: text/plain\r\n\r\n"
    data = b"".join(stdout(head[i:i + 1]) for i in range(len(head)))
    with FcgiServer(replying(data + response(b"", b"done"))) as srv:
        e = eddy(config(srv, block="buffer_size: 2m").replace(
            "read_timeout: 3s", "read_timeout: 30s"))
        s = e.connect(timeout=30)
        t = time.monotonic()
        s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        first = s.recv(20)
        took = time.monotonic() - t
        s.close()
        assert first.startswith(b"HTTP/1.1 200"), first
        assert took < 2.5, took


def test_stale_pooled_connection_put_resent_fresh(eddy):
    """A kept connection the application drops when the next request
    comes: a PUT with a streamed body goes once more, whole, on a fresh
    connection."""
    seen = {}

    def handler(req, conn):
        n = seen.get(id(conn), 0) + 1
        seen[id(conn)] = n
        if n > 1:
            return False
        conn.sendall(response(HEAD, b"fresh"))
        return True
    with FcgiServer(handler) as srv:
        e = eddy(config(srv, keepalive=2))
        assert e.get("/x").body == b"fresh"
        r = e.request("PUT", "/x", body=b"p" * 5000)
        assert r.status == 200 and r.body == b"fresh", r
        assert srv.connections == 2
        assert [q.stdin for q in srv.requests][-1] == b"p" * 5000


def test_underscore_names_cannot_make_skipped_variables(eddy):
    """With underscores_in_headers, Content_Length and Content_Type give
    no HTTP_CONTENT_LENGTH / HTTP_CONTENT_TYPE (RFC 3875 4.1.18: the body's
    own are CONTENT_LENGTH and CONTENT_TYPE, which eddy makes exact)."""
    with FcgiServer(replying(response(HEAD, b"ok"))) as srv:
        e = eddy(config(srv, server="underscores_in_headers: true"))
        r = e.request("POST", "/x", body=b"abc",
                      headers={"Content_Length": "999",
                               "Content_Type": "text/evil",
                               "Content-Type": "text/plain", "X_Ok": "1"})
        assert r.status == 200
        p = srv.requests[0].params
        assert p["CONTENT_LENGTH"] == "3"
        assert p["CONTENT_TYPE"] == "text/plain"
        assert "HTTP_CONTENT_LENGTH" not in p
        assert "HTTP_CONTENT_TYPE" not in p
        assert p["HTTP_X_OK"] == "1"
