"""Process model and signals (process.md): workers and their ids, respawn,
reload (HUP and -s reload), graceful and fast shutdown, log reopening,
the pid file, and the three accept modes."""

import os
import pwd
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (pid_alive, position, proc_children, read_response,
                      read_until_close, split_response, wait_for)


def config(workers=2, body="gen1 $pid $worker_id\\n", accept="exclusive",
           extra="", server_extra=""):
    """A config whose location / answers `TAG PID WORKER_ID`."""
    return """
workers: %d
shutdown_timeout: 2s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
events: {accept: %s}
%s
servers:
  - listen: 127.0.0.1:{port}
%s    locations:
      /:
        return: {status: 200, body: "%s"}
""" % (workers, accept, extra, server_extra, body)


ANSWER = re.compile(r"^(\w+) (\d+) (\d+)\n$")


def answer(e, timeout=5.0):
    """(tag, pid, worker_id) from one request on a new connection."""
    r = e.request("GET", "/", timeout=timeout)
    assert r.status == 200, r
    m = ANSWER.match(r.text)
    assert m, "unexpected body %r" % r.text
    return m.group(1), int(m.group(2)), int(m.group(3))


def collect(e, nworkers, max_requests=600, timeout=15.0):
    """Requests on new connections until every worker id 0..N-1 has
    answered (bounded); returns {worker_id: set(pids)}."""
    seen = {}
    deadline = time.monotonic() + timeout
    for _ in range(max_requests):
        _, pid, wid = answer(e)
        seen.setdefault(wid, set()).add(pid)
        if len(seen) >= nworkers or time.monotonic() > deadline:
            break
    return seen


def pid_file(e):
    return e.prefix / "logs" / "eddy.pid"


def read_pid(e):
    return int(pid_file(e).read_text().strip())


def wait_gone(pids, timeout=10.0):
    return wait_for(lambda: not any(pid_alive(p) for p in pids), timeout)


# --------------------------------------------------------------------------
# workers


@pytest.mark.parametrize("n", [2, 3])
def test_worker_count(eddy, n):
    e = eddy(config(workers=n))
    pids = e.wait_workers(n)
    assert e.pid not in pids
    time.sleep(0.3)
    assert sorted(e.worker_pids()) == sorted(pids), "workers are unstable"


def test_pid_file_holds_master_pid(eddy):
    e = eddy(config(workers=1))
    assert wait_for(lambda: pid_file(e).exists(), 5), e.stderr_text()
    assert read_pid(e) == e.pid


def plant(kind, at, victim):
    """Puts something at path `at` before eddy writes there."""
    if kind == "symlink":
        os.symlink(victim, at)
    elif kind == "dangling":
        os.symlink(victim.parent / "created-through-link", at)
    elif kind == "hardlink":
        os.link(victim, at)
    else:                       # a stale file left by a crash
        at.write_text("12345\n")


def assert_untouched(victim, st):
    assert victim.read_text() == "precious\n"
    now = os.stat(victim)
    assert (now.st_ino, now.st_size, now.st_mtime_ns) == \
        (st.st_ino, st.st_size, st.st_mtime_ns)
    assert not (victim.parent / "created-through-link").exists()


@pytest.mark.parametrize("kind", ["symlink", "dangling", "hardlink",
                                  "stale"])
def test_regress_pid_file_tmp_planted(eddy, tmp_path, kind):
    """The master (root here) writes the pid file through PATH.tmp: what
    is planted there is replaced, never written through; the victim a
    link points to stays as it was."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    st = os.stat(victim)
    e = eddy(config(workers=1), start=False)
    plant(kind, pid_file(e).with_name("eddy.pid.tmp"), victim)
    e.start()
    assert wait_for(lambda: pid_file(e).exists(), 5), e.stderr_text()
    assert not pid_file(e).is_symlink()
    assert pid_file(e).read_text() == "%d\n" % e.pid
    assert not os.path.lexists(pid_file(e).with_name("eddy.pid.tmp"))
    assert_untouched(victim, st)
    # The reload status file next to it is written the same way.
    plant(kind, pid_file(e).with_name("eddy.pid.reload.tmp"), victim)
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 0, out + err
    status = pid_file(e).with_name("eddy.pid.reload")
    assert not status.is_symlink()
    assert re.match(r"^%d \d+ ok\n$" % e.pid, status.read_text())
    assert_untouched(victim, st)


def test_pid_file_symlink_replaced_not_followed(eddy, tmp_path):
    """A symlink at the pid file's own path is replaced by the rename (a
    rename never writes through the link it replaces)."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    st = os.stat(victim)
    e = eddy(config(workers=1), start=False)
    os.symlink(victim, pid_file(e))
    e.start()
    assert wait_for(lambda: not pid_file(e).is_symlink(), 5)
    assert pid_file(e).read_text() == "%d\n" % e.pid
    assert_untouched(victim, st)


def test_regress_pid_file_tmp_not_removable(eddy):
    """A PATH.tmp that cannot be removed (a non-empty directory): eddy
    does not start, and says why."""
    e = eddy(config(workers=1), start=False)
    d = pid_file(e).with_name("eddy.pid.tmp")
    d.mkdir()
    (d / "x").write_text("x")
    e.start(wait=False)
    assert e.wait_exit(10) not in (None, 0), e.stderr_text()
    assert re.search(r"\[emerg\] .*cannot write pid file \S*/logs/eddy\.pid "
                     r"\(through a new file \S*/logs/eddy\.pid\.tmp\) "
                     r"\(\d+: Is a directory\)", e.all_logs()), e.all_logs()
    assert not pid_file(e).exists()


def mem_readable_by(uid, pid):
    """Whether a process of uid (not root) may open /proc/PID/mem, as
    any program of the `user:` account could."""
    p = subprocess.run(
        ["/usr/bin/python3", "-c",
         "open('/proc/%d/mem', 'rb').close()" % pid],
        user=uid, group=uid, extra_groups=[], cwd="/",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert p.returncode == 0 or b"PermissionError" in p.stderr, p.stderr
    return p.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to nobody")
@pytest.mark.parametrize("value,dumpable", [
    (None, False), ("false", False), ("true", True)])
def test_regress_workers_not_dumpable(eddy, value, dumpable):
    """Workers that dropped to `user:` stay non-dumpable (the files in
    their /proc directory belong to root, and the user's processes
    cannot read their memory) unless worker_core_dumps: true."""
    nobody = pwd.getpwnam("nobody").pw_uid
    extra = "user: nobody\n"
    if value is not None:
        extra += "worker_core_dumps: %s\n" % value
    e = eddy(config(workers=2, extra=extra))
    workers = e.wait_workers(2)
    # Once a worker says it started, it has dropped privileges and set
    # its dumpable flag.
    assert wait_for(lambda: all(
        re.search(r"\] %d#\d+: worker \d+ started" % w, e.error_log)
        for w in workers), 10), e.error_log
    for w in workers:
        assert pid_status_uid(w) == nobody, "worker %d is not nobody" % w
        for name in ("status", "mem", "environ"):
            assert os.stat("/proc/%d/%s" % (w, name)).st_uid == \
                (nobody if dumpable else 0), name
        assert mem_readable_by(nobody, w) == dumpable
    assert answer(e)[0] == "gen1"


def pid_status_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^Uid:\s+(\d+)", f.read(), re.M).group(1))


def test_worker_ids_and_pids(eddy):
    e = eddy(config(workers=3, accept="reuseport"))
    workers = e.wait_workers(3)
    seen = collect(e, 3)
    assert sorted(seen) == [0, 1, 2], seen
    for wid, pids in seen.items():
        assert len(pids) == 1, "worker id %d answered from %s" % (wid, pids)
    answered = set().union(*seen.values())
    assert len(answered) == 3, seen
    assert answered == set(workers), (seen, workers)
    assert e.pid not in answered, "the master served a request"


def test_killed_worker_respawns_with_same_id(eddy):
    e = eddy(config(workers=2, accept="reuseport"))
    e.wait_workers(2)
    seen = collect(e, 2)
    assert sorted(seen) == [0, 1], seen
    victim = next(iter(seen[1]))
    other = next(iter(seen[0]))

    os.kill(victim, signal.SIGKILL)
    workers = e.wait_workers(2, exclude=[victim])
    assert other in workers, "the surviving worker was replaced too"
    newpid = [p for p in workers if p != other][0]

    def id1_from_new_pid():
        _, pid, wid = answer(e)
        return wid == 1 and pid == newpid

    assert wait_for(id1_from_new_pid, 10, interval=0.01), \
        "no answer from worker id 1 with pid %d" % newpid
    assert e.running()
    # The survivor keeps its id.
    assert wait_for(lambda: answer(e)[1:] == (other, 0), 10, 0.01)


# --------------------------------------------------------------------------
# reload


def test_reload_hup(eddy):
    e = eddy(config(workers=2))
    old = e.wait_workers(2)
    assert answer(e)[0] == "gen1"

    e.write_config(config(workers=2, body="gen2 $pid $worker_id\\n"))
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: answer(e)[0] == "gen2", 10), e.all_logs()
    assert e.running()
    # The old generation drains and leaves; a new one serves.
    new = e.wait_workers(2, exclude=old, timeout=10)
    for _ in range(20):
        tag, pid, wid = answer(e)
        assert tag == "gen2"
        assert pid in new and wid in (0, 1)
    assert read_pid(e) == e.pid


def test_reload_hup_changes_worker_count(eddy):
    e = eddy(config(workers=2))
    old = e.wait_workers(2)
    e.write_config(config(workers=3, body="gen2 $pid $worker_id\\n"))
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: answer(e)[0] == "gen2", 10), e.all_logs()
    e.wait_workers(3, exclude=old, timeout=10)


def test_reload_hup_broken_config_keeps_old(eddy):
    e = eddy(config(workers=2))
    old = e.wait_workers(2)
    assert answer(e)[0] == "gen1"

    text = e.write_config(config(
        workers=2, body="gen2 $pid $worker_id\\n",
        server_extra="    bogus_key: 1\n")).read_text()
    line, col = position(text, "bogus_key")
    e.signal(signal.SIGHUP)
    pat = re.compile(r"eddy\.yaml:%d:%d: .*bogus_key" % (line, col))
    assert wait_for(lambda: pat.search(e.all_logs()), 10), e.all_logs()

    assert e.running()
    for _ in range(10):
        tag, pid, _ = answer(e)
        assert tag == "gen1"
        assert pid in old
    assert sorted(e.worker_pids()) == sorted(old)

    # Once fixed, a reload goes through.
    e.write_config(config(workers=2, body="gen3 $pid $worker_id\\n"))
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: answer(e)[0] == "gen3", 10), e.all_logs()


def test_reload_keeps_serving(eddy):
    """No request fails while reloads happen."""
    e = eddy(config(workers=2))
    e.wait_workers(2)
    failures = []
    start = time.monotonic()
    reloads = 0
    while time.monotonic() - start < 2.5:
        if time.monotonic() - start >= reloads * 0.4:
            reloads += 1
            e.write_config(config(workers=2, body="g%d $pid $worker_id\\n"
                                  % reloads))
            e.signal(signal.SIGHUP)
        try:
            answer(e)
        except Exception as exc:  # noqa: BLE001 - collect every failure
            failures.append(repr(exc))
    assert not failures, failures[:5]
    assert e.running()


def test_s_reload_good_and_bad(eddy):
    e = eddy(config(workers=2))
    e.wait_workers(2)
    assert wait_for(lambda: pid_file(e).exists(), 5)

    e.write_config(config(workers=2, body="gen2 $pid $worker_id\\n"))
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 0, out + err
    # -s reload returns once the new generation serves.
    assert wait_for(lambda: answer(e)[0] == "gen2", 2), e.all_logs()

    text = e.write_config(config(
        workers=2, body="gen3 $pid $worker_id\\n",
        server_extra="    keepalive_timeout: 10x\n")).read_text()
    line, _ = position(text, "keepalive_timeout")
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 1, out + err
    assert re.search(r"eddy\.yaml:%d:\d+: " % line, out + err), out + err
    assert e.running()
    for _ in range(5):
        assert answer(e)[0] == "gen2"


def test_s_quit(eddy):
    e = eddy(config(workers=2))
    workers = e.wait_workers(2)
    assert wait_for(lambda: pid_file(e).exists(), 5)
    rc, out, err = e.ctl("-s", "quit")
    assert rc == 0, out + err
    assert e.wait_exit(8) == 0, e.all_logs()
    assert not pid_file(e).exists()
    assert wait_gone(workers, 5)


def test_s_stop(eddy):
    e = eddy(config(workers=2))
    workers = e.wait_workers(2)
    assert wait_for(lambda: pid_file(e).exists(), 5)
    rc, out, err = e.ctl("-s", "stop")
    assert rc == 0, out + err
    assert e.wait_exit(5) == 0, e.all_logs()
    assert not pid_file(e).exists()
    assert wait_gone(workers, 5)


# --------------------------------------------------------------------------
# shutdown


def test_quit_after_request_closes_idle_keepalive(eddy):
    e = eddy(config(workers=2))
    workers = e.wait_workers(2)
    s = e.connect()
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = split_response(read_response(s))
        assert status == 200
        assert ANSWER.match(body.decode())
        e.signal(signal.SIGQUIT)
        rest, closed = read_until_close(s, 5)
        assert closed, "idle keep-alive connection not closed on QUIT"
        assert rest == b""
    finally:
        s.close()
    assert e.wait_exit(2 + 5) == 0, e.all_logs()
    assert not pid_file(e).exists()
    assert wait_gone(workers, 5)


def test_quit_with_half_sent_request(eddy):
    """A head half sent when QUIT arrives: either answered (then closed) or
    the connection is closed; the master exits 0 within shutdown_timeout."""
    e = eddy(config(workers=1))
    workers = e.wait_workers(1)
    s = e.connect()
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        time.sleep(0.3)
        t0 = time.monotonic()
        e.signal(signal.SIGQUIT)
        time.sleep(0.3)
        try:
            s.sendall(b"\r\n")
        except OSError:
            pass
        data, closed = read_until_close(s, 5)
        assert closed, "connection left open after QUIT: %r" % data
        if data:
            status, headers, body = split_response(data)
            assert status == 200, data
            assert "close" in ",".join(headers.get("connection", [])).lower()
            assert ANSWER.match(body.decode()), data
    finally:
        s.close()
    assert e.wait_exit(2 + 5) == 0, e.all_logs()
    assert time.monotonic() - t0 < 2 + 3
    assert not pid_file(e).exists()
    assert wait_gone(workers, 5)


def test_regress_quit_closes_silent_connection(eddy):
    """A connection that has sent nothing (a browser's spare connection)
    is idle: QUIT closes it within about a second, without a byte, and
    the master exits; it used to wait for shutdown_timeout (30 s here).
    One whose request comes 0.3 s into the quit is still answered. (With
    `deferred: false`: with deferred, the default, the kernel keeps such
    connections until their first bytes, see the test below.)"""
    e = eddy(config(workers=1).replace("shutdown_timeout: 2s",
                                       "shutdown_timeout: 30s")
             .replace("listen: 127.0.0.1:{port}",
                      "listen: [{address: 127.0.0.1:{port}, deferred: false}]"))
    workers = e.wait_workers(1)
    silent = e.connect()
    late = e.connect()
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        e.signal(signal.SIGQUIT)
        time.sleep(0.3)
        late.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data, closed = read_until_close(late, 5)
        assert closed
        status, headers, body = split_response(data)
        assert status == 200, data
        assert "close" in ",".join(headers.get("connection", [])).lower()
        data, closed = read_until_close(silent, 5)
        assert closed and data == b"", data
        assert e.wait_exit(5) == 0, e.all_logs()
        assert time.monotonic() - t0 < 3
    finally:
        silent.close()
        late.close()
    assert wait_gone(workers, 5)


def test_quit_with_deferred_silent_connection(eddy):
    """deferred (the default): a connection that has sent nothing is still
    the kernel's when QUIT closes the listeners, which drops it: the master
    does not wait for shutdown_timeout, and the client's first bytes get a
    reset, never a response."""
    e = eddy(config(workers=1).replace("shutdown_timeout: 2s",
                                       "shutdown_timeout: 30s"))
    workers = e.wait_workers(1)
    silent = e.connect()
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        e.signal(signal.SIGQUIT)
        assert e.wait_exit(5) == 0, e.all_logs()
        assert time.monotonic() - t0 < 3
        try:
            silent.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            data, closed = read_until_close(silent, 5)
        except (ConnectionResetError, BrokenPipeError):
            data, closed = b"", True
        assert closed and data == b"", data
    finally:
        silent.close()
    assert wait_gone(workers, 5)


def test_term_is_fast(eddy):
    # A long shutdown_timeout and a half-read request: TERM must not wait.
    e = eddy(config(workers=2).replace("shutdown_timeout: 2s",
                                       "shutdown_timeout: 30s"))
    workers = e.wait_workers(2)
    assert wait_for(lambda: pid_file(e).exists(), 5)
    s = e.connect()
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        time.sleep(0.2)
        t0 = time.monotonic()
        e.signal(signal.SIGTERM)
        assert e.wait_exit(3) == 0, e.all_logs()
        assert time.monotonic() - t0 < 3
        _, closed = read_until_close(s, 3)
        assert closed
    finally:
        s.close()
    assert not pid_file(e).exists()
    assert wait_gone(workers, 3)


def test_int_is_fast(eddy):
    e = eddy(config(workers=1))
    workers = e.wait_workers(1)
    e.signal(signal.SIGINT)
    assert e.wait_exit(3) == 0, e.all_logs()
    assert wait_gone(workers, 3)


def test_master_exit_takes_workers_along(eddy):
    """After a stop no worker is left listening."""
    e = eddy(config(workers=2))
    workers = e.wait_workers(2)
    e.signal(signal.SIGTERM)
    assert e.wait_exit(5) == 0
    assert wait_gone(workers, 5)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", e.port), timeout=1).close()


def test_max_restarts_gives_up(eddy):
    """A slot that keeps dying makes the master stop everything and exit 2
    after max_restarts respawns."""
    e = eddy(config(workers=2, extra="max_restarts: 2"))
    workers = e.wait_workers(2)
    victim = workers[0]
    seen = set(workers)
    deadline = time.monotonic() + 20
    kills = 0
    while e.running() and time.monotonic() < deadline:
        if pid_alive(victim):
            os.kill(victim, signal.SIGKILL)
            kills += 1
        # Wait for the replacement of the same slot (a new child).
        fresh = wait_for(lambda: [p for p in e.worker_pids()
                                  if p not in seen] or not e.running(), 5)
        if fresh is True or not fresh:
            continue
        victim = fresh[0]
        seen.update(fresh)
    assert not e.running(), "master still running after %d kills" % kills
    assert e.wait_exit(5) == 2, e.all_logs()
    assert kills >= 3
    assert "[crit]" in e.all_logs() or "[alert]" in e.all_logs() \
        or "[emerg]" in e.all_logs(), e.all_logs()
    assert wait_gone(seen, 5)


def test_winch_stops_workers_keeps_master(eddy):
    e = eddy(config(workers=2))
    workers = e.wait_workers(2)
    e.signal(signal.SIGWINCH)
    e.wait_workers(0, timeout=2 + 5)
    assert wait_gone(workers, 5)
    assert e.running()
    time.sleep(0.3)
    assert e.worker_pids() == [], "workers were respawned after WINCH"


def test_usr2_binary_upgrade(eddy):
    e = eddy(config(workers=2))
    e.wait_workers(2)
    assert wait_for(lambda: pid_file(e).exists(), 5)
    oldbin = e.prefix / "logs" / "eddy.pid.oldbin"

    e.signal(signal.SIGUSR2)

    def new_master():
        if not oldbin.exists() or not pid_file(e).exists():
            return None
        pid = read_pid(e)
        return pid if pid != e.pid else None

    new_pid = wait_for(new_master, 10)
    assert new_pid, "no new master; logs:\n" + e.all_logs()
    e._seen_workers.add(new_pid)            # cleaned up at teardown
    try:
        assert int(oldbin.read_text().strip()) == e.pid
        assert pid_alive(new_pid)
        # The new master's workers come up on the inherited sockets.
        assert wait_for(lambda: len(proc_children(new_pid)) == 2, 10), \
            e.all_logs()
        for _ in range(10):
            assert answer(e)[0] == "gen1"

        # Retire the old master: the new one keeps serving alone.
        e.signal(signal.SIGQUIT)
        assert e.wait_exit(2 + 5) == 0, e.all_logs()
        assert not oldbin.exists()
        assert read_pid(e) == new_pid, "the new master's pid file was removed"
        new_workers = proc_children(new_pid)
        for _ in range(10):
            tag, pid, _ = answer(e)
            assert pid in new_workers
    finally:
        if pid_alive(new_pid):
            os.kill(new_pid, signal.SIGTERM)
            wait_for(lambda: not pid_alive(new_pid), 5)


# --------------------------------------------------------------------------
# logs


def test_usr1_reopens_error_log(eddy):
    e = eddy(config(workers=2))
    e.wait_workers(2)
    log = e.prefix / "logs" / "error.log"
    assert wait_for(log.exists, 5), "logs/error.log not created"
    moved = e.prefix / "logs" / "error.log.1"
    os.rename(log, moved)

    e.signal(signal.SIGUSR1)
    assert wait_for(log.exists, 5), "USR1 did not create a new error.log"
    # Later lines go to the new file: a reload logs at notice level.
    size_before = log.stat().st_size
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: log.stat().st_size > size_before, 5), \
        "nothing written to the reopened error.log"
    line_re = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
                         r"\[(debug|info|notice|warn|error|crit|alert|emerg)\]"
                         r" \d+#\d+: ", re.M)
    assert line_re.search(log.read_text()), log.read_text()
    assert e.running()


def test_s_reopen(eddy):
    e = eddy(config(workers=1))
    e.wait_workers(1)
    log = e.prefix / "logs" / "error.log"
    assert wait_for(log.exists, 5)
    assert wait_for(lambda: pid_file(e).exists(), 5)
    os.rename(log, e.prefix / "logs" / "error.log.1")
    rc, out, err = e.ctl("-s", "reopen")
    assert rc == 0, out + err
    assert wait_for(log.exists, 5)


def test_error_log_line_format(eddy):
    e = eddy(config(workers=1))
    e.wait_workers(1)
    e.signal(signal.SIGHUP)     # something is logged at notice/info
    line_re = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(info|notice)\] "
                         r"(\d+)#(\d+): \S", re.M)
    assert wait_for(lambda: line_re.search(e.error_log), 5), e.error_log


# --------------------------------------------------------------------------
# accept modes


@pytest.mark.parametrize("mode", ["exclusive", "reuseport", "shared"])
def test_accept_modes_serve(eddy, mode):
    e = eddy(config(workers=2, accept=mode))
    workers = e.wait_workers(2)
    for _ in range(30):
        tag, pid, wid = answer(e)
        assert tag == "gen1"
        assert pid in workers, (pid, workers)
        assert wid in (0, 1)


@pytest.mark.parametrize("mode", ["exclusive", "reuseport", "shared"])
def test_accept_modes_concurrent_connections(eddy, mode):
    """Many connections open at once are all answered."""
    e = eddy(config(workers=2, accept=mode))
    e.wait_workers(2)
    socks = [e.connect() for _ in range(40)]
    try:
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        for s in socks:
            status, _, body = split_response(read_response(s))
            assert status == 200
            assert ANSWER.match(body.decode())
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("value", ["maybe", "[true]", "{on: 1}"])
def test_worker_core_dumps_must_be_boolean(tmp_path, value):
    """A value that is not a boolean is an error at its position, not
    silently taken as false."""
    from conftest import check_config_error
    check_config_error(tmp_path, """
        workers: 1
        worker_core_dumps: %s
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /: {return: 204}
        """ % value, value[:5], "worker_core_dumps|boolean")


def test_worker_core_dumps_only_at_main_level(tmp_path):
    from conftest import check_config_error
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            worker_core_dumps: true
            locations:
              /: {return: 204}
        """, "worker_core_dumps", "worker_core_dumps")
