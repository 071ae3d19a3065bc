"""Zero-downtime operations (process.md): reloads, listener changes, binary
upgrades and worker crashes while clients keep sending requests; `user:`
and log reopening; the process tree in the error log."""

import os
import pwd
import re
import shutil
import signal
import socket
import tempfile
import threading
import time

import pytest

from conftest import Eddy, pid_alive, proc_children, wait_for
from httputil import parse_response
from proxy_backend import Backend, response

STATIC_BODY = b"static file body\n" * 8


def backend_handler(req, conn):
    """/slow answers after a while; everything else at once."""
    if req.target.endswith("/slow"):
        time.sleep(1.2)
    return response(200, b"backend " + req.target.encode())


def config(tag="g1", workers=2, listen=("{port0}",), extra=""):
    """Static files under /static/, a proxy under /api/ and / answering
    `TAG WORKER_ID` (BACKEND is replaced by the backend's port)."""
    listens = "".join("      - 127.0.0.1:%s\n" % p for p in listen)
    return """
workers: %d
shutdown_timeout: 5s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
access_log: off
%s
servers:
  - listen:
%s    root: html
    locations:
      /static/:
        static: {}
      /api/:
        proxy: {pass: "http://127.0.0.1:BACKEND"}
      /:
        return: {status: 200, body: "%s $worker_id\\n"}
""" % (workers, extra, listens, tag)


class Server:
    """An eddy with a Python backend behind /api/."""

    def __init__(self, eddy, ports=1, **kw):
        self.backend = Backend(backend_handler)
        self.eddy_factory = eddy
        self.e = eddy(self.text(**kw), ports=ports, start=False)
        self.e.write_file("html/static/f.txt", STATIC_BODY)
        # Only the first port needs to listen (others may come later).
        self.e.start(wait=False)
        port = self.e.port
        self.e.ports, ports = [port], self.e.ports
        try:
            self.e.wait_ready()
        finally:
            self.e.ports = ports

    def text(self, **kw):
        return config(**kw).replace("BACKEND", str(self.backend.port))

    def reload_with(self, **kw):
        self.e.write_config(self.text(**kw))
        self.e.signal(signal.SIGHUP)

    def close(self):
        self.backend.close()


@pytest.fixture
def server(eddy):
    made = []

    def make(**kw):
        s = Server(eddy, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# --------------------------------------------------------------------------
# a client loop


class Failure(Exception):
    pass


def one_request(sock, path, close, timeout=5.0):
    """Sends GET path on sock and reads the response. Returns the Resp;
    raises Failure("nothing: ...") when the connection ended before any
    byte of the response, Failure("partial: ...") after some bytes."""
    req = ("GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n"
           % (path, "Connection: close\r\n" if close else "")).encode()
    try:
        sock.sendall(req)
    except OSError as exc:
        raise Failure("nothing: send: %r" % exc)
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        got = parse_response(buf, eof=False) if buf else None
        if got is not None:
            return got[0]
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure("partial: timeout after %r" % buf[:100])
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            raise Failure("partial: timeout after %r" % buf[:100])
        except OSError as exc:
            raise Failure("%s: recv: %r" % ("partial" if buf else "nothing",
                                            exc))
        if not b:
            if buf:
                got = parse_response(buf, eof=True)
                if got is not None:
                    return got[0]
            raise Failure("%s: EOF after %r" % ("partial" if buf
                                                else "nothing", buf[:100]))
        buf += b


class ClientLoop:
    """Threads sending requests until stopped. Each target is
    (port, path, expected body or None for `TAG ID`, keepalive). A request
    that finds a reused keep-alive connection closed before any byte of
    its response is retried on a new connection, as HTTP clients do with
    idempotent requests; every other failure (refused, reset, timeout,
    partial or wrong answer, on fresh connections too) is an error."""

    def __init__(self, targets, pause=0.002):
        self.targets = targets
        self.pause = pause
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.ok = 0
        self.retries = 0
        self.ok_after = {}          # thread index -> successes since mark
        self.threads = [threading.Thread(target=self._run, args=(i, t),
                                         daemon=True)
                        for i, t in enumerate(targets)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(10)

    def _error(self, text):
        with self.lock:
            self.errors.append("%.3f %s" % (time.monotonic(), text))

    def _check(self, r, expect):
        if r.status != 200:
            return "status %d: %r" % (r.status, r.body[:100])
        if expect is None:
            if not re.match(rb"^\w+ \d+\n$", r.body):
                return "body %r" % r.body[:100]
        elif r.body != expect:
            return "body %r" % r.body[:100]
        return None

    def _run(self, index, target):
        port, path, expect, keepalive = target
        sock = None
        used = 0
        while not self.stop_ev.is_set():
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", port),
                                                    timeout=5)
                except OSError as exc:
                    self._error("connect %s: %r" % (path, exc))
                    time.sleep(0.05)
                    continue
                used = 0
            try:
                r = one_request(sock, path, not keepalive)
            except Failure as exc:
                sock.close()
                sock = None
                if used and str(exc).startswith("nothing"):
                    with self.lock:
                        self.retries += 1
                    continue
                self._error("%s (request %d on its connection): %s"
                            % (path, used + 1, exc))
                continue
            used += 1
            err = self._check(r, expect)
            if err:
                self._error("%s: %s" % (path, err))
            else:
                with self.lock:
                    self.ok += 1
                    self.ok_after[index] = self.ok_after.get(index, 0) + 1
            if not keepalive or r.closes:
                sock.close()
                sock = None
            time.sleep(self.pause)
        if sock is not None:
            sock.close()

    def mark(self):
        with self.lock:
            self.ok_after = {}

    def wait_all_served(self, timeout=5.0):
        """Wait until every thread had a success since mark()."""
        return wait_for(lambda: len(self.ok_after) == len(self.threads),
                        timeout)


def mixed_targets(port):
    """Static and proxied, keep-alive and one connection per request."""
    return [(port, "/static/f.txt", STATIC_BODY, True),
            (port, "/api/ka", b"backend /api/ka", True),
            (port, "/static/f.txt", STATIC_BODY, False),
            (port, "/api/new", b"backend /api/new", False)]


def worker_ids_seen(e):
    return e.worker_pids()


def wait_generation_gone(e, n):
    """Wait until only the n workers of the newest generation are left."""
    return wait_for(lambda: len(e.worker_pids()) == n, 15)


# --------------------------------------------------------------------------
# reload


def test_twenty_reloads_under_load_lose_nothing(server):
    s = server()
    e = s.e
    e.wait_workers(2)
    slow_results = []

    def slow():
        # Proxied requests that each span several reloads.
        while not loop.stop_ev.is_set():
            try:
                with socket.create_connection(("127.0.0.1", e.port),
                                              timeout=5) as c:
                    r = one_request(c, "/api/slow", True, timeout=8)
                slow_results.append(r.status == 200
                                    and r.body == b"backend /api/slow")
            except Failure as exc:
                slow_results.append(repr(exc))

    loop = ClientLoop(mixed_targets(e.port))
    with loop:
        t = threading.Thread(target=slow, daemon=True)
        t.start()
        time.sleep(0.3)
        for i in range(20):
            s.reload_with(tag="g%d" % (i + 2))
            time.sleep(0.15)
        time.sleep(0.5)
        loop.stop()
        t.join(10)
    assert not loop.errors, "%d errors, %d ok, %d retries:\n%s" % (
        len(loop.errors), loop.ok, loop.retries, "\n".join(loop.errors[:10]))
    assert loop.ok > 100, loop.ok
    assert slow_results and all(x is True for x in slow_results), \
        slow_results
    # The old generations leave within shutdown_timeout.
    assert wait_generation_gone(e, 2), e.worker_pids()
    assert e.running()
    log = e.error_log
    assert "generation 21 started" in log, log[-3000:]
    assert len(re.findall(r"reload done", log)) == 20, log[-3000:]
    assert re.search(r"generation 20 stopped", log), log[-3000:]


def test_slow_proxied_request_spans_reload(server):
    s = server(workers=1)
    e = s.e
    e.wait_workers(1)
    # One slow proxied request, and one head still arriving when the
    # reload happens: both are answered by the old worker, and both
    # connections then move to the new generation (fleet.md: plaintext
    # HTTP/1 is not forced to close at a reload).
    slow = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    half = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    try:
        slow.sendall(b"GET /api/slow HTTP/1.1\r\nHost: a\r\n\r\n")
        half.sendall(b"GET /api/half HTTP/1.1\r\nHost: a\r\n")
        time.sleep(0.2)
        s.reload_with(tag="g2", workers=1)
        assert wait_for(lambda: e.get("/").text.startswith("g2"), 5)
        half.sendall(b"\r\n")
        r = one_request_read(half)
        assert r.status == 200 and r.body == b"backend /api/half", r
        assert not r.closes, r
        r = one_request_read(slow, timeout=5)
        assert r.status == 200 and r.body == b"backend /api/slow", r
        # In flight at the reload, plaintext: not forced to close; its
        # connection then moves to the new generation (fleet.md).
        assert not r.closes, r
        assert wait_generation_gone(e, 1)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        r = one_request_read(slow)
        assert r.status == 200 and r.body.startswith(b"g2"), r
        half.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        r = one_request_read(half)
        assert r.status == 200 and r.body.startswith(b"g2"), r
    finally:
        slow.close()
        half.close()


def one_request_read(sock, timeout=5.0):
    """Reads one response from sock (the request was already sent)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        got = parse_response(buf, eof=False) if buf else None
        if got is not None:
            return got[0]
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        b = sock.recv(65536)
        if not b:
            got = parse_response(buf, eof=True)
            assert got is not None, "closed before a response: %r" % buf
            return got[0]
        buf += b


def test_regress_quit_serves_request_waiting_in_socket(eddy):
    """A keep-alive connection whose next request is already in the
    kernel when the worker is told to quit is answered (Connection:
    close), not closed unanswered."""
    e = eddy(config(workers=1).replace("BACKEND", "1"))
    (worker,) = e.wait_workers(1)
    c = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    try:
        r = one_request(c, "/", False)
        assert r.status == 200 and not r.closes, r
        # Stopped, the worker sees the QUIT and the request in one turn,
        # the signal first.
        os.kill(worker, signal.SIGSTOP)
        try:
            os.kill(worker, signal.SIGQUIT)
            time.sleep(0.1)
            c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            time.sleep(0.1)
        finally:
            os.kill(worker, signal.SIGCONT)
        r = one_request_read(c)
        assert r.status == 200 and r.closes, r
    finally:
        c.close()


def test_regress_quit_answers_keepalive_client_in_a_loop(eddy):
    """A client sending requests in a loop on one connection sends its
    next one shortly after the last answer: a quitting worker answers it
    (with Connection: close) instead of closing under it. A connection
    idle for longer is closed at once."""
    e = eddy(config(workers=1).replace("BACKEND", "1"))
    (worker,) = e.wait_workers(1)
    busy = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    idle = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    try:
        assert one_request(idle, "/", False).status == 200
        time.sleep(1.2)
        assert one_request(busy, "/", False).status == 200
        t0 = time.monotonic()
        os.kill(worker, signal.SIGQUIT)
        idle.settimeout(2)
        assert idle.recv(10) == b""
        assert time.monotonic() - t0 < 0.5
        time.sleep(0.2)
        r = one_request(busy, "/", False)
        assert r.status == 200 and r.closes, r
        busy.settimeout(2)
        assert busy.recv(10) == b""
    finally:
        busy.close()
        idle.close()
    assert wait_for(lambda: not pid_alive(worker), 5)


# --------------------------------------------------------------------------
# -s reload


def test_s_reload_exit_codes(server):
    s = server()
    e = s.e
    e.wait_workers(2)
    assert wait_for(lambda: (e.prefix / "logs/eddy.pid").exists(), 5)

    e.write_config(s.text(tag="good"))
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 0, out + err
    assert "reload done" in err
    assert e.get("/").text.startswith("good ")

    bad = s.text(tag="bad").replace("shutdown_timeout: 5s",
                                    "shutdown_timeout: 5s\nworkerz: 2")
    e.write_config(bad)
    line = bad.lstrip("\n").split("\n").index("workerz: 2") + 1
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 1, out + err
    assert re.search(r"eddy\.yaml:%d:1: .*workerz" % line, err), err
    assert e.get("/").text.startswith("good ")

    # Valid, but a listener cannot be bound: the master reports it.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        e.write_config(s.text(tag="bind", listen=("{port0}", str(port))))
        rc, out, err = e.ctl("-s", "reload")
        assert rc == 1, out + err
        assert re.search(r"bind\(\) to 127\.0\.0\.1:%d failed .*in use"
                         % port, err), err
        assert "reload failed" in err
    assert e.get("/").text.startswith("good ")
    log = e.error_log
    assert "reload failed" in log and "reload done" in log, log

    e.signal(signal.SIGQUIT)
    assert e.wait_exit(10) == 0
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 1 and "no running master" in err, out + err


# --------------------------------------------------------------------------
# listeners


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def test_reload_adds_and_removes_listeners(server):
    s = server(ports=3, listen=("{port0}", "{port1}"))
    e = s.e
    p_keep, p_gone, p_new = e.ports
    old = e.wait_workers(2)
    assert refused(p_new)
    targets = [(p_keep, "/", None, False), (p_keep, "/", None, False),
               (p_keep, "/static/f.txt", STATIC_BODY, True)]
    with ClientLoop(targets) as loop:
        time.sleep(0.2)
        s.reload_with(tag="g2", listen=("{port0}", "{port2}"))
        assert wait_for(lambda: e.get("/", port=p_new).text
                        .startswith("g2 "), 5), e.error_log
        assert wait_for(lambda: refused(p_gone), 10), "removed port open"
        # Back and forth: the unchanged port never closes meanwhile.
        s.reload_with(tag="g3", listen=("{port0}", "{port1}"))
        assert wait_for(lambda: e.get("/", port=p_gone).text
                        .startswith("g3 "), 5), e.error_log
        assert wait_for(lambda: refused(p_new), 10)
        time.sleep(0.3)
        loop.stop()
    assert not loop.errors, loop.errors[:10]
    assert loop.ok > 50
    assert e.get("/", port=p_keep).text.startswith("g3 ")
    e.wait_workers(2, exclude=old)


def test_regress_reuseport_fewer_workers_after_reload(server):
    """accept: reuseport with fewer workers after a reload: the sockets of
    the ids that are gone are closed, not left to take connections that
    nobody accepts."""
    s = server(workers=3, extra="events: {accept: reuseport}")
    e = s.e
    old = e.wait_workers(3)
    s.reload_with(tag="g2", workers=2, extra="events: {accept: reuseport}")
    e.wait_workers(2, exclude=old, timeout=10)
    for i in range(60):
        r = e.get("/", timeout=2)
        assert r.status == 200 and r.text.startswith("g2 "), (i, r)


def test_regress_reuseport_queue_of_removed_id_is_served(server):
    """Connections waiting in the queue of a reuseport socket whose worker
    id goes away are accepted by the old worker before it closes it."""
    s = server(workers=3, extra="events: {accept: reuseport}")
    e = s.e
    old = e.wait_workers(3)
    for p in old:
        os.kill(p, signal.SIGSTOP)
    socks = []
    try:
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", e.port), timeout=5)
            c.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            socks.append(c)
        s.reload_with(tag="g2", workers=2,
                      extra="events: {accept: reuseport}")
        e.wait_workers(5, timeout=10)
    finally:
        for p in old:
            os.kill(p, signal.SIGCONT)
    try:
        for c in socks:
            r = one_request_read(c)
            assert r.status == 200, r
    finally:
        for c in socks:
            c.close()


# --------------------------------------------------------------------------
# binary upgrade


def test_usr2_winch_quit_under_load(server):
    s = server()
    e = s.e
    old_workers = e.wait_workers(2)
    pid_file = e.prefix / "logs" / "eddy.pid"
    oldbin = e.prefix / "logs" / "eddy.pid.oldbin"
    assert wait_for(pid_file.exists, 5)
    new_pid = None
    with ClientLoop(mixed_targets(e.port)) as loop:
        time.sleep(0.3)
        e.signal(signal.SIGUSR2)

        def new_master():
            if not oldbin.exists() or not pid_file.exists():
                return None
            pid = int(pid_file.read_text())
            return pid if pid != e.pid else None

        new_pid = wait_for(new_master, 10)
        assert new_pid, e.error_log
        e._seen_workers.add(new_pid)
        try:
            assert wait_for(lambda: len(proc_children(new_pid)) == 2, 10)
            time.sleep(0.3)
            # Old workers leave; the new master's serve alone.
            e.signal(signal.SIGWINCH)
            assert wait_for(lambda: not any(pid_alive(p)
                                            for p in old_workers), 10)
            assert e.running()
            loop.mark()
            assert loop.wait_all_served(5), loop.errors[:5]
            e.signal(signal.SIGQUIT)
            assert e.wait_exit(10) == 0, e.error_log
            loop.mark()
            assert loop.wait_all_served(5), loop.errors[:5]
            loop.stop()
            assert not loop.errors, "%d errors, %d ok:\n%s" % (
                len(loop.errors), loop.ok, "\n".join(loop.errors[:10]))
            assert int(pid_file.read_text()) == new_pid
            assert not oldbin.exists()
            assert "upgrade: started" in e.error_log
        finally:
            loop.stop()
            if pid_alive(new_pid):
                os.kill(new_pid, signal.SIGQUIT)
                wait_for(lambda: not pid_alive(new_pid), 8)


def test_usr2_failed_upgrade_restores_pid_file(server):
    s = server()
    e = s.e
    e.wait_workers(2)
    pid_file = e.prefix / "logs" / "eddy.pid"
    assert wait_for(pid_file.exists, 5)
    # The new binary reads the configuration again: a broken one makes
    # it exit at once.
    e.write_config(s.text() + "bogus: 1\n")
    e.signal(signal.SIGUSR2)
    assert wait_for(lambda: "upgrade failed" in e.error_log, 10), \
        e.error_log
    assert wait_for(lambda: pid_file.exists()
                    and int(pid_file.read_text()) == e.pid, 5)
    assert not (e.prefix / "logs" / "eddy.pid.oldbin").exists()
    assert e.get("/").status == 200
    assert len(e.worker_pids()) == 2


# --------------------------------------------------------------------------
# worker crash


def test_killed_worker_under_load(server):
    s = server(workers=2,
               extra="events: {accept: reuseport}")
    e = s.e
    workers = e.wait_workers(2)
    targets = [(e.port, "/", None, False)] * 2 + [
        (e.port, "/api/x", b"backend /api/x", False),
        (e.port, "/static/f.txt", STATIC_BODY, True)]
    with ClientLoop(targets) as loop:
        time.sleep(0.3)
        ok_before = loop.ok
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        new = e.wait_workers(2, exclude=[victim], timeout=5)
        assert workers[1] in new
        loop.mark()
        assert loop.wait_all_served(5), loop.errors[:5]
        time.sleep(0.3)
        loop.stop()
    # Only the requests in the killed worker at that moment fail: one per
    # client thread at most.
    assert len(loop.errors) <= len(targets), loop.errors
    assert loop.ok > ok_before + 20
    respawned = [p for p in new if p != workers[1]][0]
    # Same id: both ids still answer, one of them from the new pid.
    ids = set()
    for _ in range(200):
        ids.add(e.get("/").text.split()[1])
        if len(ids) == 2:
            break
    assert ids == {"0", "1"}, ids
    log = e.error_log
    assert re.search(r"worker \d \(pid %d\) killed by signal 9" % victim,
                     log), log
    assert re.search(r"worker \d respawned as pid %d" % respawned, log), log


# --------------------------------------------------------------------------
# user


def uids(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_user_drops_privileges_and_logs_reopen(tmp_path):
    nobody = pwd.getpwnam("nobody").pw_uid
    # A prefix that `nobody` can reach (tmp_path is private to root).
    prefix = tempfile.mkdtemp(prefix="eddy-user-")
    os.chmod(prefix, 0o755)
    e = Eddy(prefix, """
user: nobody
workers: 2
shutdown_timeout: 2s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
servers:
  - listen: 127.0.0.1:{port}
    access_log: logs/access.log
    locations:
      /:
        return: {status: 200, body: "hi $worker_id\\n"}
""")
    try:
        e.start()
        workers = e.wait_workers(2)
        assert uids(e.pid) == [0, 0, 0, 0]
        for w in workers:
            # Dropped right after the fork.
            assert wait_for(lambda: uids(w) == [nobody] * 4, 5), uids(w)
        assert uids(e.pid) == [0, 0, 0, 0]
        for _ in range(4):
            assert e.get("/").status == 200
        logs = e.prefix / "logs"
        assert wait_for(lambda: (logs / "access.log").exists()
                        and (logs / "access.log").read_text().count("\n")
                        >= 4, 5)

        # logrotate: move both logs away, USR1, new lines in new files.
        os.rename(logs / "access.log", logs / "access.log.1")
        os.rename(logs / "error.log", logs / "error.log.1")
        e.signal(signal.SIGUSR1)
        assert wait_for((logs / "error.log").exists, 5)
        time.sleep(0.3)
        for _ in range(3):
            assert e.get("/after").status == 200
        assert wait_for(lambda: (logs / "access.log").exists()
                        and "/after" in (logs / "access.log").read_text(),
                        5), e.log_text("logs/error.log.1")
        assert "/after" not in (logs / "access.log.1").read_text()
        # The same workers now write their own lines to the new error
        # log: a reload makes them log their shutdown.
        e.signal(signal.SIGHUP)
        assert wait_for(lambda: len(e.worker_pids()) == 2
                        and not any(pid_alive(w) for w in workers), 10)
        text = e.log_text()
        for w in workers:
            assert re.search(r"\] %d#\d: worker \d exiting" % w, text), text
        both = text + e.log_text("logs/error.log.1")
        assert "reopening" not in both.replace("reopening logs", ""), both
        assert e.get("/").status == 200
    finally:
        e.stop()
        shutil.rmtree(prefix, ignore_errors=True)


def test_reload_removes_unix_socket_file(eddy):
    """A unix listener dropped by a reload is closed and its socket file
    removed; one that stays keeps its file and keeps serving."""
    conf = """
workers: 1
servers:
  - listen: [127.0.0.1:{port}, "unix:{prefix}/keep.sock"%s]
    locations:
      /: {return: {status: 200, body: "%s\\n"}}
"""
    e = eddy(conf % (', "unix:{prefix}/gone.sock"', "g1"))
    keep, gone = e.prefix / "keep.sock", e.prefix / "gone.sock"
    # The TCP port may accept before the master has bound the unix ones.
    assert wait_for(lambda: keep.exists() and gone.exists(), 5)
    old = e.wait_workers(1)
    e.write_config(conf % ("", "g2"))
    e.signal(signal.SIGHUP)
    e.wait_workers(1, exclude=old)
    assert wait_for(lambda: not gone.exists(), 10), e.all_logs()
    assert keep.exists()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(str(keep))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.endswith(b"g2\n"), data
