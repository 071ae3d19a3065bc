"""cgi processes (spec fastcgi-cgi.md, cgi): timeouts and the kill of the
whole process group, scripts that fork or ignore SIGTERM, a client going
away, a worker killed, max_processes, and reaping (no zombie)."""

import os
import signal
import socket
import threading
import time

from cgiutil import (cgi_root, config, group_members, log_has,  # noqa: F401
                     read_pid, run_dir, script)
from conftest import pid_alive, proc_stat, wait_for


def gone(pids, timeout=5.0):
    return wait_for(lambda: not any(pid_alive(p) for p in pids), timeout)


def test_timeout_kills_the_group(eddy, cgi_root, run_dir):
    pidfile = run_dir / "pids"
    script(cgi_root, "hang.sh", """
        #!/bin/sh
        sleep 100 &
        echo $$ $! > %s
        wait
    """ % pidfile)
    e = eddy(config(cgi_root, cgi="""
        timeout: 1s
        kill_after: 1s
    """, extra="shutdown_timeout: 1s\n"))
    t0 = time.monotonic()
    r = e.get("/cgi-bin/hang.sh", timeout=10)
    assert r.status == 504
    assert 0.9 < time.monotonic() - t0 < 4
    pid, child = read_pid(pidfile)
    log_has(e, 'cgi script "%s" timed out after 1s' % (cgi_root / "hang.sh"))
    assert gone([pid, child]), [proc_stat(p) for p in (pid, child)]
    assert not group_members(pid)


def test_sigterm_ignored_then_sigkill(eddy, cgi_root, run_dir):
    pidfile = run_dir / "pids"
    script(cgi_root, "stubborn.sh", """
        #!/bin/sh
        trap '' TERM
        printf 'Content-Type: text/plain\\n\\nstarted\\n'
        echo $$ > %s
        exec sleep 100
    """ % pidfile)
    e = eddy(config(cgi_root, cgi="""
        timeout: 1s
        kill_after: 2s
    """, locations="""
        /status:
          status: prometheus
    """))
    data, closed = e.raw_ex(b"GET /cgi-bin/stubborn.sh HTTP/1.1\r\n"
                            b"Host: x\r\n\r\n", timeout=5)
    # After the head, a timeout closes the connection: the chunked body
    # never gets its last chunk.
    assert closed and data.startswith(b"HTTP/1.1 200")
    assert b"started" in data and not data.endswith(b"0\r\n\r\n")
    (pid,) = read_pid(pidfile)
    assert pid_alive(pid)           # SIGTERM is ignored...
    assert gone([pid], timeout=4)   # ...SIGKILL follows kill_after
    text = e.get("/status").body.decode()
    assert "eddy_cgi_processes_timeouts_total 1\n" in text
    assert "eddy_cgi_processes_active 0\n" in text


def test_client_gone_kills_the_script(eddy, cgi_root, run_dir):
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
    s.close()
    assert gone([pid], timeout=4)


def test_killed_worker_leaves_no_script(eddy, cgi_root, run_dir):
    pidfile = run_dir / "pids"
    script(cgi_root, "slow.sh", """
        #!/bin/sh
        echo $$ > %s
        exec sleep 100
    """ % pidfile)
    e = eddy(config(cgi_root))
    (worker,) = e.wait_workers(1)
    s = e.connect()
    s.sendall(b"GET /cgi-bin/slow.sh HTTP/1.1\r\nHost: x\r\n\r\n")
    (pid,) = read_pid(pidfile)
    assert proc_stat(pid)[1] == worker
    os.kill(worker, signal.SIGKILL)
    assert gone([pid], timeout=4)   # PR_SET_PDEATHSIG
    s.close()


def test_fast_exit_kills_graceful_waits(eddy, cgi_root, run_dir):
    pidfile = run_dir / "pids"
    script(cgi_root, "slow.sh", """
        #!/bin/sh
        echo $$ > %s
        sleep 1
        printf 'Content-Type: text/plain\\n\\ndone'
    """ % pidfile)
    e = eddy(config(cgi_root, extra="shutdown_timeout: 10s\n"))
    result = {}

    def get():
        result["r"] = e.get("/cgi-bin/slow.sh", timeout=10)
    t = threading.Thread(target=get)
    t.start()
    read_pid(pidfile)
    e.signal(signal.SIGQUIT)    # graceful: the script finishes
    t.join(10)
    assert result["r"].status == 200 and result["r"].body == b"done"
    e.wait_exit(10)

    os.unlink(pidfile)
    script(cgi_root, "slower.sh", """
        #!/bin/sh
        echo $$ > %s
        exec sleep 100
    """ % pidfile)
    e2 = eddy(config(cgi_root))
    s = e2.connect()
    s.sendall(b"GET /cgi-bin/slower.sh HTTP/1.1\r\nHost: x\r\n\r\n")
    (pid,) = read_pid(pidfile)
    e2.signal(signal.SIGTERM)       # fast: killed now
    assert gone([pid], timeout=3)
    s.close()


def test_max_processes(eddy, cgi_root):
    script(cgi_root, "nap.sh", """
        #!/bin/sh
        sleep 1
        printf 'Content-Type: text/plain\\n\\nok'
    """)
    e = eddy(config(cgi_root, cgi="max_processes: 2", locations="""
        /status:
          status: prometheus
    """))
    results = []

    def get():
        results.append(e.get("/cgi-bin/nap.sh", timeout=10).status)
    threads = [threading.Thread(target=get) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(10)
    assert sorted(results) == [200, 200, 503, 503]
    log_has(e, "cgi max_processes (2) reached")
    text = e.get("/status").body.decode()
    assert "eddy_cgi_processes_refused_total 2\n" in text
    assert "eddy_cgi_processes_spawned_total 2\n" in text


def test_max_processes_waits_for_an_exiting_script(eddy, cgi_root):
    # A script closes its output, then takes 0.3 s to exit: at
    # max_processes 1 the next request waits for its reap (woken, not
    # polled for a fixed 50 ms) and runs, instead of a 503.
    script(cgi_root, "linger.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nok'
        exec >&- 2>&-
        sleep 0.3
    """)
    e = eddy(config(cgi_root, cgi="max_processes: 1"))
    for _ in range(3):
        t0 = time.monotonic()
        r = e.get("/cgi-bin/linger.sh", timeout=10)
        assert (r.status, r.body) == (200, b"ok")
    assert time.monotonic() - t0 < 1.5


def test_no_zombie_after_1000_requests(eddy, cgi_root):
    script(cgi_root, "hi.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nhi'
    """)
    e = eddy(config(cgi_root))
    (worker,) = e.wait_workers(1)
    s = socket.create_connection(("127.0.0.1", e.port), timeout=10)
    try:
        req = b"GET /cgi-bin/hi.sh HTTP/1.1\r\nHost: x\r\n\r\n"
        buf = b""
        for i in range(1000):
            s.sendall(req)
            while buf.count(b"\r\n0\r\n\r\n") < 1:
                b = s.recv(65536)
                assert b, i
                buf += b
            assert buf.startswith(b"HTTP/1.1 200"), buf[:100]
            buf = buf[buf.index(b"\r\n0\r\n\r\n") + 7:]
    finally:
        s.close()

    def zombies():
        kids = []
        try:
            with open("/proc/%d/task/%d/children" % (worker, worker)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            pass
        return [k for k in kids if (proc_stat(k) or ("X",))[0] == "Z"]

    assert wait_for(lambda: not zombies(), 3), zombies()
    assert not [k for k in os.listdir("/proc") if k.isdigit()
                and (proc_stat(int(k)) or ("", 0))[1] == worker
                and proc_stat(int(k))[0] == "Z"]


def test_http2_timeout_resets_and_reset_kills(eddy, cgi_root, run_dir):
    from h2util import INTERNAL_ERROR, H2
    pidfile = run_dir / "pids"
    script(cgi_root, "stall.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\npartial'
        echo $$ >> %s
        exec sleep 100
    """ % pidfile)
    e = eddy(config(cgi_root, cgi="""
        timeout: 1s
        kill_after: 1s
    """).replace("listen: 127.0.0.1:{port}",
                 'listen: [{address: "127.0.0.1:{port}", http2: true}]'))
    c = H2(e.port)
    try:
        # After the head, the timeout resets the stream: never a body
        # that looks complete.
        sid = c.request("/cgi-bin/stall.sh")
        r = c.wait(sid, timeout=5)
        assert r.status == 200 and r.body == b"partial"
        assert r.reset == INTERNAL_ERROR and not r.ended, r
        (first,) = read_pid(pidfile)
        assert gone([first], timeout=4)
    finally:
        c.close()
    # The client resetting its stream kills the script (long before its
    # timeout).
    e = eddy(config(cgi_root, cgi="kill_after: 1s").replace(
        "listen: 127.0.0.1:{port}",
        'listen: [{address: "127.0.0.1:{port}", http2: true}]'))
    c = H2(e.port)
    try:
        sid = c.request("/cgi-bin/stall.sh")
        deadline = time.monotonic() + 5
        while len(read_pid(pidfile)) < 2 and time.monotonic() < deadline:
            c.recv(0.1)
        second = read_pid(pidfile)[1]
        c.reset(sid)
        c.recv(0.2)
        assert gone([second], timeout=2)
    finally:
        c.close()


NO_PIDFD = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>

/* A kernel without pidfd_open (before 5.3): eddy reaps on SIGCHLD. */
long
syscall(long n, ...)
{
    static long (*real)(long, ...);
    va_list ap;
    long a[6];
    int i;

    if (n == SYS_pidfd_open) {
        errno = ENOSYS;
        return -1;
    }
    va_start(ap, n);
    for (i = 0; i < 6; i++) {
        a[i] = va_arg(ap, long);
    }
    va_end(ap);
    if (real == NULL) {
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    }
    return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""


def test_reaped_on_sigchld_without_pidfd(eddy, cgi_root, tmp_path):
    # Without pidfd_open, scripts are reaped through SIGCHLD (the
    # worker's signalfd): every request ends, a script's end is seen
    # while others run, a timed-out one is killed, and no zombie stays.
    import shutil
    import subprocess
    import pytest

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the preload shim")
    src = tmp_path / "nopidfd.c"
    src.write_text(NO_PIDFD)
    lib = tmp_path / "nopidfd.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(src),
                    "-ldl"], check=True, timeout=60)
    os.chmod(tmp_path, 0o755)
    script(cgi_root, "hi.sh", """
        #!/bin/sh
        printf 'Content-Type: text/plain\\n\\nhi'
    """)
    script(cgi_root, "nap.sh", """
        #!/bin/sh
        sleep 0.5
        printf 'Content-Type: text/plain\\n\\nnap'
    """)
    script(cgi_root, "hang.sh", """
        #!/bin/sh
        exec sleep 100
    """)
    preload = str(lib)
    # A sanitizer build wants its runtime first in the list.
    from conftest import EDDY_BIN
    ldd = subprocess.run(["ldd", str(EDDY_BIN)], capture_output=True,
                         text=True, timeout=30).stdout
    for ln in ldd.splitlines():
        if "libasan" in ln and "=>" in ln:
            preload = ln.split("=>")[1].split()[0] + ":" + preload
    e = eddy(config(cgi_root, cgi="""
        timeout: 1s
        kill_after: 1s
    """), env={"LD_PRELOAD": preload})
    (worker,) = e.wait_workers(1)
    with open("/proc/%d/maps" % worker) as f:
        assert "nopidfd.so" in f.read()

    out = []
    t = threading.Thread(target=lambda: out.append(
        e.get("/cgi-bin/nap.sh", timeout=10)))
    t.start()
    time.sleep(0.2)
    fds = [os.readlink("/proc/%d/fd/%s" % (worker, n))
           for n in os.listdir("/proc/%d/fd" % worker)]
    assert not any("pidfd" in x for x in fds), fds
    for _ in range(50):
        r = e.get("/cgi-bin/hi.sh", timeout=10)
        assert (r.status, r.body) == (200, b"hi")
    t.join(10)
    assert (out[0].status, out[0].body) == (200, b"nap")
    assert e.get("/cgi-bin/hang.sh", timeout=10).status == 504

    def zombies():
        try:
            with open("/proc/%d/task/%d/children" % (worker, worker)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            return []
        return [k for k in kids if (proc_stat(k) or ("X",))[0] == "Z"]

    def no_children():
        with open("/proc/%d/task/%d/children" % (worker, worker)) as f:
            return f.read().split() == []

    assert wait_for(no_children, 5), zombies()
