"""The cgi handler (spec fastcgi-cgi.md, cgi): the meta-variables a script
gets, argv, the body in and out, the response head, the script walk's
refusals, stderr, and HTTP/2."""

import hashlib
import json
import os
import socket
import time

from cgiutil import ENV_PY, cgi_root, config, log_has, script  # noqa: F401
from conftest import read_response, split_response


def env_of(r):
    assert r.status == 200, (r, r.body[:500])
    return json.loads(r.body)


def test_meta_variables(eddy, cgi_root):
    script(cgi_root, "env.py", ENV_PY)
    e = eddy(config(cgi_root, cgi="""
        interpreters: {.py: /usr/bin/python3}
        env: {LANG: C.UTF-8, WHO: "$remote_addr"}
    """))
    r = e.get("/cgi-bin/env.py/extra/p%20th?a=1&b=x%20y", headers={
        "Host": "example.test", "X-Foo": "one", "Proxy": "evil:1",
        "Authorization": "Basic dTpw", "Cookie": "a=1",
        "Accept": "text/plain"})
    d = env_of(r)
    env, path = d["env"], str(cgi_root / "env.py")
    want = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_SCHEME": "http",
        "SERVER_NAME": "example.test",
        "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": str(e.port),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_HOST": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": "/cgi-bin/env.py/extra/p%20th?a=1&b=x%20y",
        "QUERY_STRING": "a=1&b=x%20y",
        "SCRIPT_NAME": "/cgi-bin/env.py",
        "SCRIPT_FILENAME": path,
        "PATH_INFO": "/extra/p th",
        "PATH_TRANSLATED": str(cgi_root) + "/extra/p th",
        "DOCUMENT_ROOT": str(cgi_root),
        "DOCUMENT_URI": "/cgi-bin/env.py/extra/p th",
        "REDIRECT_STATUS": "200",
        "HTTP_HOST": "example.test",
        "HTTP_X_FOO": "one",
        "HTTP_COOKIE": "a=1",
        "HTTP_ACCEPT": "text/plain",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "WHO": "127.0.0.1",
    }
    for k, v in want.items():
        assert env.get(k) == v, (k, env.get(k), v)
    assert env["SERVER_SOFTWARE"].startswith("eddy")
    assert 0 < int(env["REMOTE_PORT"]) < 65536
    # httpoxy, RFC 3875 4.1.18, no body: absent; nothing else leaks in.
    for k in ("HTTP_PROXY", "HTTP_AUTHORIZATION", "CONTENT_LENGTH",
              "CONTENT_TYPE", "HTTPS"):
        assert k not in env, k
    extra = set(env) - set(want) - {"SERVER_SOFTWARE", "REMOTE_PORT",
                                    "HTTP_CONNECTION",
                                    "HTTP_ACCEPT_ENCODING"}
    # Whatever python adds itself (LC_CTYPE coercion) is not from eddy.
    extra.discard("LC_CTYPE")
    assert not extra, extra
    # Never the query as arguments; the interpreter then the script;
    # started in the script's directory, as the workers' user.
    assert d["argv"] == [path]
    assert d["cwd"] == str(cgi_root)
    assert d["uid"] == 65534


def test_underscore_field_and_authorization(eddy, cgi_root):
    script(cgi_root, "env.py", ENV_PY)
    e = eddy(config(cgi_root, cgi="""
        pass_authorization: true
    """))
    d = env_of(e.get("/cgi-bin/env.py", headers={
        "X_Foo": "under", "Authorization": "Basic dTpw"}))
    assert "HTTP_X_FOO" not in d["env"]
    assert d["env"]["HTTP_AUTHORIZATION"] == "Basic dTpw"
    # The environment is a fresh one: PATH and nothing of eddy's own.
    assert "PWD" not in d["env"] and "HOME" not in d["env"]


def test_query_words_are_not_arguments(eddy, cgi_root):
    script(cgi_root, "args.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\n%s:%s' "$#" "$*"
    """)
    e = eddy(config(cgi_root))
    for q in ("?-s", "?-n+x", "?a+b+c", "?%2Dv"):
        r = e.get("/cgi-bin/args.sh" + q)
        assert r.status == 200 and r.body == b"0:", (q, r.body)


def test_post_body_streamed(eddy, cgi_root):
    """10 MiB through stdin: intact, the worker's memory flat."""
    script(cgi_root, "env.py", ENV_PY)
    e = eddy(config(cgi_root, cgi="buffer_size: 64k",
                    extra="client_max_body_size: 16m\n"))
    data = os.urandom(1 << 20) * 10
    assert e.get("/cgi-bin/env.py").status == 200
    (worker,) = e.worker_pids()

    def hwm():
        with open("/proc/%d/status" % worker) as f:
            for ln in f:
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1])
    before = hwm()
    r = e.request("POST", "/cgi-bin/env.py", body=data, timeout=30,
                  headers={"Content-Type": "application/octet-stream"})
    d = env_of(r)
    assert d["len"] == len(data)
    assert d["sha256"] == hashlib.sha256(data).hexdigest()
    assert d["env"]["CONTENT_LENGTH"] == str(len(data))
    assert d["env"]["CONTENT_TYPE"] == "application/octet-stream"
    assert hwm() - before < 4096, (before, hwm())


def chunked_post(port, path, body, piece=256):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" % path.encode())
        for i in range(0, len(body), piece):
            c = body[i:i + piece]
            s.sendall(b"%x\r\n%s\r\n" % (len(c), c))
        s.sendall(b"0\r\n\r\n")
        status, headers, rest = split_response(read_response(s, timeout=10))
    finally:
        s.close()
    if "chunked" in headers.get("transfer-encoding", [""])[0]:
        body = b""
        while True:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            body, rest = body + rest[:n], rest[n + 2:]
        rest = body
    return status, headers, rest


def test_unknown_length_body(eddy, cgi_root):
    script(cgi_root, "env.py", ENV_PY)
    e = eddy(config(cgi_root, cgi="buffer_size: 4k"))
    status, headers, body = chunked_post(e.port, "/cgi-bin/env.py",
                                         b"k" * 1024)
    assert status == 200
    d = json.loads(body)
    assert d["env"]["CONTENT_LENGTH"] == "1024" and d["len"] == 1024
    status, headers, body = chunked_post(e.port, "/cgi-bin/env.py",
                                         b"k" * 8192)
    assert status == 411
    log_has(e, "over buffer_size")


def test_status_and_redirects(eddy, cgi_root):
    script(cgi_root, "status.sh", """
        #!/bin/sh
        printf 'Status: 418 Short And Stout\\r\\nX-Mine: yes\\r\\n'
        printf 'Content-Type: text/plain\\r\\n\\r\\nteapot'
    """)
    script(cgi_root, "local.sh", """
        #!/bin/sh
        printf 'Location: /target?from=cgi\\n\\nignored body'
    """)
    script(cgi_root, "away.sh", """
        #!/bin/sh
        printf 'Location: http://example.test/x\\n\\n'
    """)
    script(cgi_root, "moved.sh", """
        #!/bin/sh
        printf 'Status: 301\\nLocation: http://example.test/y\\n\\n'
    """)
    script(cgi_root, "plain.sh", """
        #!/bin/sh
        printf 'X-A: 1\\nConnection: close\\nServer: evil\\n\\nbody'
    """)
    script(cgi_root, "bad.sh", """
        #!/bin/sh
        printf 'HTTP/1.1 200 OK\\r\\n\\r\\nnph-style'
    """)
    script(cgi_root, "short.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n'
    """)
    e = eddy(config(cgi_root, locations="""
        /target:
          return: {status: 200, body: "target $request_method $args [$request]"}
    """))
    r = e.get("/cgi-bin/status.sh")
    assert (r.status, r.body) == (418, b"teapot")
    assert r.header("X-Mine") == "yes"
    r = e.request("HEAD", "/cgi-bin/status.sh")
    assert (r.status, r.body) == (418, b"")
    r = e.request("POST", "/cgi-bin/local.sh", body=b"abc")
    # The redirected request is a GET; $request stays the client's line.
    assert (r.status, r.body) == (
        200, b"target GET from=cgi [POST /cgi-bin/local.sh HTTP/1.1]")
    r = e.request("HEAD", "/cgi-bin/local.sh")
    assert (r.status, r.body) == (200, b"")
    r = e.get("/cgi-bin/away.sh")
    assert r.status == 302
    assert r.header("Location") == "http://example.test/x"
    r = e.get("/cgi-bin/moved.sh")
    assert r.status == 301
    assert r.header("Location") == "http://example.test/y"
    r = e.get("/cgi-bin/plain.sh")
    assert (r.status, r.body) == (200, b"body")
    assert r.header("Content-Type") is None
    assert r.header("Server").startswith("eddy")
    assert r.header("X-A") == "1"
    for name in ("bad.sh", "short.sh"):
        r = e.get("/cgi-bin/" + name)
        assert r.status == 502, name
        log_has(e, 'cgi script "%s" sent an invalid response head'
                % (cgi_root / name))


def test_content_length_framing(eddy, cgi_root):
    script(cgi_root, "more.sh", """
        #!/bin/sh
        printf 'Content-Length: 3\\n\\nabcdef'
    """)
    script(cgi_root, "less.sh", """
        #!/bin/sh
        printf 'Content-Length: 10\\n\\nabc'
    """)
    e = eddy(config(cgi_root))
    r = e.get("/cgi-bin/more.sh")
    assert (r.status, r.body) == (200, b"abc")
    log_has(e, "more than its Content-Length")
    data, closed = e.raw_ex(b"GET /cgi-bin/less.sh HTTP/1.1\r\nHost: x\r\n"
                            b"\r\n")
    assert closed and data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"\r\n\r\nabc")


def test_large_output_streamed(eddy, cgi_root):
    script(cgi_root, "big.sh", """
        #!/bin/sh
        printf 'Content-Type: application/octet-stream\\n\\n'
        exec head -c 104857600 /dev/zero
    """)
    e = eddy(config(cgi_root))
    s = e.connect(timeout=20)
    try:
        s.sendall(b"GET /cgi-bin/big.sh HTTP/1.0\r\nHost: x\r\n\r\n")
        total, head = 0, b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        total = len(head) - head.index(b"\r\n\r\n") - 4
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            total += len(b)
    finally:
        s.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert total == 104857600


def test_exit_by_signal_and_exec_failure(eddy, cgi_root):
    script(cgi_root, "die.sh", """
        #!/bin/sh
        kill -9 $$
    """)
    script(cgi_root, "fail.sh", """
        #!/bin/sh
        echo oops >&2
        exit 3
    """)
    script(cgi_root, "garbage.cgi", "\x7fELFnot really\n")
    e = eddy(config(cgi_root))
    assert e.get("/cgi-bin/die.sh").status == 502
    log_has(e, 'cgi script "%s" exited on signal 9' % (cgi_root / "die.sh"))
    assert e.get("/cgi-bin/fail.sh").status == 502
    log_has(e, 'cgi script "%s" exited with status 3'
            % (cgi_root / "fail.sh"))
    assert e.get("/cgi-bin/garbage.cgi").status == 502
    log_has(e, 'cgi exec "%s" failed (8: Exec format error)'
            % (cgi_root / "garbage.cgi"))


def test_walk_refusals(eddy, cgi_root):
    ok = """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nran %s' "$SCRIPT_NAME"
    """
    script(cgi_root, "ok.sh", ok)
    script(cgi_root, "noexec.sh", ok, mode=0o644)
    script(cgi_root, "noexec.py", "print('x')\n", mode=0o644)
    script(cgi_root, "setuid.sh", ok, mode=0o4755)
    script(cgi_root, "writable.sh", ok, mode=0o757)
    script(cgi_root, "open/in.sh", ok)
    os.chmod(cgi_root / "open", 0o777)
    script(cgi_root, "dir/index.cgi", ok)
    (cgi_root / "empty").mkdir(mode=0o755)
    os.chmod(cgi_root / "empty", 0o755)
    script(cgi_root, ".hidden.sh", ok)
    outside = cgi_root.parent / (cgi_root.name + "-outside.sh")
    outside.write_text("#!/bin/sh\necho\n")
    os.chmod(outside, 0o755)
    os.symlink(str(outside), cgi_root / "out.sh")
    os.symlink("ok.sh", cgi_root / "link.sh")
    nobody = script(cgi_root, "nobody.sh", ok)
    os.chown(nobody, 65534, 65534)
    os.symlink("nobody.sh", cgi_root / "foreign.sh")
    try:
        e = eddy(config(cgi_root, cgi="index: [index.cgi]"))
        cases = [
            ("ok.sh", 200, None),
            ("ok.sh/more/path", 200, None),
            ("link.sh", 200, None),
            ("dir/", 200, None),
            ("missing.sh", 404, "not found"),
            (".hidden.sh", 404, "not found"),
            ("noexec.sh", 403, "is not executable by the worker's user"),
            ("noexec.py", 403, "is not executable by the worker's user"),
            ("setuid.sh", 403, "is setuid or setgid"),
            ("writable.sh", 403, "is writable by others"),
            ("open/in.sh", 403, "is in a directory writable by others"),
            ("empty/", 403, "is a directory without an index"),
            ("out.sh", 403, "leads out of the root"),
            ("foreign.sh", 403, "is reached through a symbolic link"),
        ]
        for name, status, reason in cases:
            r = e.get("/cgi-bin/" + name)
            assert r.status == status, (name, r)
            if reason:
                log_has(e, 'cgi script "%s" %s' % (
                    cgi_root / name.rstrip("/"), reason))
        r = e.get("/cgi-bin/dir/")
        assert r.body == b"ran /cgi-bin/dir/index.cgi"
        # Traversal never reaches a file above the root.
        for path in ("/cgi-bin/../" + outside.name,
                     "/cgi-bin/%2e%2e/" + outside.name):
            assert e.get(path).status == 404, path
    finally:
        outside.unlink()


def test_symlinks_deny_and_follow(eddy, cgi_root):
    script(cgi_root, "ok.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nok'
    """)
    os.symlink("ok.sh", cgi_root / "link.sh")
    (cgi_root / "sub").mkdir(mode=0o755)
    os.chmod(cgi_root / "sub", 0o755)
    os.symlink("../ok.sh", cgi_root / "sub" / "up.sh")
    os.symlink("/bin/true", cgi_root / "abs.sh")
    e = eddy(config(cgi_root, cgi="symlinks: deny"))
    assert e.get("/cgi-bin/ok.sh").status == 200
    assert e.get("/cgi-bin/link.sh").status == 403
    log_has(e, 'cgi script "%s" is reached through a symbolic link'
            % (cgi_root / "link.sh"))
    e2 = eddy(config(cgi_root, cgi="symlinks: follow"))
    assert e2.get("/cgi-bin/link.sh").body == b"ok"
    assert e2.get("/cgi-bin/sub/up.sh").body == b"ok"
    assert e2.get("/cgi-bin/abs.sh").status == 403
    log_has(e2, 'cgi script "%s" leads out of the root'
            % (cgi_root / "abs.sh"))


def test_stderr_logged_with_request(eddy, cgi_root):
    script(cgi_root, "err.sh", """
        #!/bin/sh
        printf 'first line\\nsecond\\001line\\r\\n' >&2
        printf 'Content-Type: text/plain\\n\\nok'
        printf 'last words' >&2
    """)
    e = eddy(config(cgi_root))
    assert e.get("/cgi-bin/err.sh?q=1").body == b"ok"
    name = cgi_root / "err.sh"
    ln = log_has(e, 'cgi stderr from "%s": "first line"' % name)
    assert "client: 127.0.0.1" in ln
    assert 'request: "GET /cgi-bin/err.sh?q=1 HTTP/1.1"' in ln
    log_has(e, 'cgi stderr from "%s": "second\\x01line"' % name)
    log_has(e, 'cgi stderr from "%s": "last words"' % name)


def test_stderr_capped(eddy, cgi_root):
    script(cgi_root, "flood.py", """
        #!/usr/bin/python3
        import sys
        sys.stderr.write("x" * 5000 + "\\n")
        for i in range(2000):
            sys.stderr.write("line %d %s\\n" % (i, "y" * 40))
        sys.stdout.write("Content-Type: text/plain\\n\\nok")
    """)
    e = eddy(config(cgi_root))
    assert e.get("/cgi-bin/flood.py").body == b"ok"
    name = cgi_root / "flood.py"
    log_has(e, "more bytes of stderr not logged")
    lines = [ln for ln in e.error_log.splitlines()
             if 'cgi stderr from "%s"' % name in ln]
    # A 5000-byte line is logged in pieces of 2 KiB at most; past 64 KiB
    # nothing more is.
    assert lines[0].count("x") == 2048
    assert not [ln for ln in lines if "line 1999 " in ln]


def test_http2(eddy, cgi_root):
    from h2util import H2
    script(cgi_root, "env.py", ENV_PY)
    e = eddy(config(cgi_root).replace(
        "listen: 127.0.0.1:{port}",
        'listen: [{address: "127.0.0.1:{port}", http2: true}]'))
    c = H2(e.port)
    try:
        sid = c.request("/cgi-bin/env.py/x?y=1")
        r = c.wait(sid)
        assert r.status == 200, r
        d = json.loads(r.body)
        assert d["env"]["SERVER_PROTOCOL"] == "HTTP/2.0"
        assert d["env"]["HTTP_HOST"] == "localhost"
        assert d["env"]["PATH_INFO"] == "/x"
        # A body without content-length: its length learned first.
        sid = c.request("/cgi-bin/env.py", method="POST", end=False)
        c.send_data(sid, b"a" * 3000, end=False)
        c.send_data(sid, b"b" * 1000, end=True)
        r = c.wait(sid)
        d = json.loads(r.body)
        assert d["env"]["CONTENT_LENGTH"] == "4000" and d["len"] == 4000
    finally:
        c.close()


def test_status_counters(eddy, cgi_root):
    script(cgi_root, "ok.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nok'
    """)
    e = eddy(config(cgi_root, locations="""
        /status:
          status: prometheus
    """))
    for _ in range(3):
        assert e.get("/cgi-bin/ok.sh").status == 200
    time.sleep(0.2)
    text = e.get("/status").body.decode()
    assert "eddy_cgi_processes_spawned_total 3\n" in text
    assert "eddy_cgi_processes_active 0\n" in text
    assert "eddy_cgi_processes_refused_total 0\n" in text
    assert "eddy_cgi_processes_timeouts_total 0\n" in text
