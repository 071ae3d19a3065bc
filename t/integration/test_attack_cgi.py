"""cgi under attack (spec fastcgi-cgi.md, cgi): hostile clients and
hostile or buggy scripts, each proved against the running server."""

import os
import time

from cgiutil import (cgi_root, config, group_members, log_has,  # noqa: F401
                     read_pid, run_dir, script)
from conftest import pid_alive, proc_stat, wait_for


def gone(pids, timeout=5.0):
    return wait_for(lambda: not any(pid_alive(p) for p in pids), timeout)


def test_timeout_covers_a_grandchild_holding_stdout(eddy, cgi_root,
                                                   run_dir):
    # The script exits at once but leaves a child with its stdout: the
    # response has not ended, and `timeout` (spawn to exit and EOF) must
    # still end it and kill the group, not leave the request open for as
    # long as the child likes.
    pidfile = run_dir / "pids"
    script(cgi_root, "bg.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nhello\\n'
        sleep 60 &
        echo $! > %s
        exit 0
    """ % pidfile)
    e = eddy(config(cgi_root, cgi="""
        timeout: 1s
        kill_after: 1s
    """))
    t0 = time.monotonic()
    data, closed = e.raw_ex(b"GET /cgi-bin/bg.sh HTTP/1.1\r\n"
                            b"Host: x\r\n\r\n", timeout=8)
    assert closed and time.monotonic() - t0 < 4
    assert data.startswith(b"HTTP/1.1 200") and b"hello" in data
    assert not data.endswith(b"0\r\n\r\n")      # never looks complete
    (child,) = read_pid(pidfile)
    assert gone([child], timeout=4), proc_stat(child)
    log_has(e, 'cgi script "%s" timed out after 1s' % (cgi_root / "bg.sh"))


def test_max_processes_one_serves_requests_one_after_another(eddy,
                                                             cgi_root):
    # Each response ends at the script's stdout EOF; the client's next
    # request on the kept connection comes back before that process is
    # reaped. Its slot is about to be free: no 503 for a client that
    # never runs two scripts at once.
    script(cgi_root, "ok.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nok'
    """)
    e = eddy(config(cgi_root, cgi="max_processes: 1"))
    s = e.connect(timeout=10)
    statuses = []
    buf = b""
    try:
        for i in range(200):
            s.sendall(b"GET /cgi-bin/ok.sh HTTP/1.1\r\nHost: x\r\n\r\n")
            while True:
                end = (b"\r\n0\r\n\r\n" if buf.startswith(b"HTTP/1.1 200")
                       else b"</html>\n")
                if buf.startswith(b"HTTP/1.1 ") and end in buf:
                    statuses.append(int(buf[9:12]))
                    buf = buf[buf.index(end) + len(end):]
                    break
                b = s.recv(65536)
                assert b, i
                buf += b
    finally:
        s.close()
    assert statuses == [200] * 200, statuses.count(503)


def test_a_link_does_not_bypass_the_writable_directory_rule(eddy,
                                                            cgi_root):
    # A script in a directory writable by others is refused (anyone may
    # swap it); reached through a link, or through a linked directory
    # whose target sits in such a directory, it must be refused alike.
    script(cgi_root, "w/evil.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nswapped'
    """)
    script(cgi_root, "x/y/evil.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nswapped'
    """)
    script(cgi_root, "ok/fine.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nfine'
    """)
    os.chmod(cgi_root / "w", 0o777)
    os.chmod(cgi_root / "x", 0o777)
    os.symlink("w/evil.sh", cgi_root / "a.sh")
    os.symlink("x/y", cgi_root / "d")
    os.symlink("x/y/evil.sh", cgi_root / "b.sh")
    os.symlink("ok/fine.sh", cgi_root / "c.sh")
    os.symlink("ok", cgi_root / "e")
    for policy in ("follow", "owner"):
        e = eddy(config(cgi_root, cgi="symlinks: %s" % policy))
        for path in ("w/evil.sh", "a.sh", "d/evil.sh", "b.sh"):
            r = e.get("/cgi-bin/" + path)
            assert r.status == 403, (policy, path, r.status, r.body)
        log_has(e, 'cgi script "%s" is in a directory writable by others'
                % (cgi_root / "a.sh"))
        for path in ("c.sh", "e/fine.sh"):
            r = e.get("/cgi-bin/" + path)
            assert (r.status, r.body) == (200, b"fine"), (policy, path)
        e.stop()


def test_fast_exit_kills_a_grandchild_holding_stdout(eddy, cgi_root,
                                                    run_dir):
    # A fast worker exit kills the scripts now, the rest of the group of
    # one whose leader already exited included.
    import signal
    pidfile = run_dir / "pids"
    script(cgi_root, "bg.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nhello\\n'
        sleep 60 &
        echo $! > %s
        exit 0
    """ % pidfile)
    e = eddy(config(cgi_root))
    s = e.connect()
    s.sendall(b"GET /cgi-bin/bg.sh HTTP/1.1\r\nHost: x\r\n\r\n")
    (child,) = read_pid(pidfile)
    time.sleep(0.3)                 # the leader has exited
    e.signal(signal.SIGTERM)
    e.wait_exit(5)
    s.close()
    assert gone([child], timeout=3), proc_stat(child)


def test_client_gone_behind_a_pipelined_request_kills_the_script(
        eddy, cgi_root, run_dir):
    # The client sends a second request behind the first and goes away:
    # the unread request must not hide its FIN, or a script (and its
    # max_processes slot) outlives the connection up to its timeout.
    pidfile = run_dir / "pids"
    script(cgi_root, "slow.sh", """
        #!/bin/sh
        echo $$ > %s
        exec sleep 100
    """ % pidfile)
    e = eddy(config(cgi_root, cgi="kill_after: 1s"))
    s = e.connect()
    s.sendall(b"GET /cgi-bin/slow.sh HTTP/1.1\r\nHost: x\r\n\r\n")
    (pid,) = read_pid(pidfile)
    assert pid_alive(pid)
    # Sent once the first is read: it waits in the socket.
    s.sendall(b"GET /cgi-bin/slow.sh HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    s.close()
    assert gone([pid], timeout=4)
    log_has(e, 'client closed the connection while cgi script "%s" ran'
            % (cgi_root / "slow.sh"))


def test_timeout_after_the_whole_output_keeps_the_response(eddy, cgi_root):
    # The script's output is complete (stdout closed) and eddy waits a
    # moment for the end of its stderr when the timeout comes: the
    # response is whole and must end as such, not be cut.
    script(cgi_root, "late.sh", """
        #!/bin/sh
        sleep 0.7
        printf 'Content-Type: text/plain\\n\\ncomplete'
        exec 1>&-
        exec sleep 5
    """)
    e = eddy(config(cgi_root, cgi="""
        timeout: 1s
        kill_after: 1s
    """))
    data, closed = e.raw_ex(b"GET /cgi-bin/late.sh HTTP/1.1\r\n"
                            b"Host: x\r\n\r\n", timeout=5)
    assert data.startswith(b"HTTP/1.1 200"), data
    assert data.endswith(b"complete\r\n0\r\n\r\n"), data
    assert not closed


def test_the_file_judged_is_the_file_executed(eddy, cgi_root):
    # eddy judges the file its walk opened, then executes that resolved
    # path: execve of the names again would follow whatever link was put
    # in their way meanwhile. A script reached through a link runs as
    # its target, from the target's directory.
    import json
    from cgiutil import ENV_PY
    script(cgi_root, "real/env.py", ENV_PY)
    os.symlink("real/env.py", cgi_root / "l.py")
    os.symlink("real", cgi_root / "d")
    e = eddy(config(cgi_root, cgi="""
        symlinks: follow
        index: [env.py]
        interpreters: {.py: /usr/bin/python3}
    """))
    target = str(cgi_root / "real" / "env.py")
    for path in ("l.py", "d/env.py", "d/", "real/env.py"):
        r = e.get("/cgi-bin/" + path)
        assert r.status == 200, (path, r.status)
        got = json.loads(r.body)
        assert got["argv"] == [target], (path, got["argv"])
        assert got["cwd"] == str(cgi_root / "real"), path
    # SCRIPT_FILENAME still names the file as the request does.
    r = e.get("/cgi-bin/l.py")
    assert (json.loads(r.body)["env"]["SCRIPT_FILENAME"]
            == str(cgi_root / "l.py"))
