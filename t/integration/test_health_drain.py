"""The health handler and drain_delay (fleet.md "Health endpoint and
drain"): 200 ok while serving; on QUIT, 503 draining for drain_delay
while the other locations still answer, each response closing its
connection; then the graceful stop. A second QUIT cuts the delay short,
TERM stops at once, HUP is refused; no drain for the old master of a
binary upgrade nor after WINCH. 503 when a required upstream is down;
-t errors and warnings."""

import os
import signal
import time

from conftest import (check_config_error, free_port, pid_alive,
                      read_response, read_until_close, run_eddy,
                      split_response, wait_for)
from proxy_backend import Backend, response

CONFIG = """
workers: 2
drain_delay: @DELAY@
shutdown_timeout: 3s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
access_log: off
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /healthz:
        health: true
      /:
        return: {status: 200, body: "hello\\n"}
"""


def config(delay="2s"):
    return CONFIG.replace("@DELAY@", delay)


def start(eddy, delay):
    """A server whose master handles signals (its workers run)."""
    e = eddy(config(delay))
    e.wait_workers(2)
    return e


def get(e, path, method="GET"):
    """One request on its own connection: (status, headers, body,
    closed by the server after the response)."""
    s = e.connect()
    try:
        s.sendall(b"%s %s HTTP/1.1\r\nHost: t\r\n\r\n"
                  % (method.encode(), path.encode()))
        data = read_response(s, head_request=method == "HEAD")
        rest, closed = read_until_close(s, 2.0)
    finally:
        s.close()
    status, h, body = split_response(data)
    return status, h, body, closed and rest == b""


def wait_log(e, text, timeout=10):
    assert wait_for(lambda: text in e.error_log, timeout), \
        "no %r in the log:\n%s" % (text, e.error_log)


def test_health_ok_head_and_405(eddy):
    e = start(eddy, "0s")
    status, h, body, closed = get(e, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert h["content-type"] == ["text/plain"]
    assert h["cache-control"] == ["no-store"]
    assert "connection" not in h and not closed
    status, h, body, _ = get(e, "/healthz", "HEAD")
    assert status == 200 and body == b""
    assert h["content-length"] == ["3"]
    for method in ("POST", "DELETE"):
        status, h, _, _ = get(e, "/healthz", method)
        assert status == 405 and h["allow"] == ["GET, HEAD"]


def test_drain_answers_503_while_others_serve(eddy):
    e = start(eddy, "2s")
    # A keep-alive connection opened before the drain.
    ka = e.connect()
    ka.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    status, h, _ = split_response(read_response(ka))
    assert status == 200 and "connection" not in h

    t0 = time.monotonic()
    e.signal(signal.SIGQUIT)
    wait_log(e, "draining: health answers 503 for 2s")
    status, h, body, closed = get(e, "/healthz")
    assert (status, body) == (503, b"draining\n")
    assert h["connection"] == ["close"] and closed
    assert h["cache-control"] == ["no-store"]
    # The other locations still answer, and close after each response.
    status, h, body, closed = get(e, "/")
    assert (status, body) == (200, b"hello\n")
    assert h["connection"] == ["close"] and closed
    # So does the connection that was open before.
    ka.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    status, h, body = split_response(read_response(ka))
    assert (status, body, h["connection"]) == (200, b"hello\n", ["close"])
    assert read_until_close(ka, 2.0) == (b"", True)
    ka.close()

    # Then the graceful stop, after the delay.
    assert e.wait_exit(10) == 0
    assert time.monotonic() - t0 >= 1.9
    log = e.error_log
    assert log.index("draining: health answers 503 for 2s") < \
        log.index("drain over: closing listeners") < \
        log.index("graceful shutdown")


def test_listeners_open_during_drain_then_closed(eddy):
    e = start(eddy, "2s")
    e.signal(signal.SIGQUIT)
    wait_log(e, "draining: health answers 503")
    # New connections are still accepted.
    for _ in range(3):
        assert get(e, "/")[0] == 200
        time.sleep(0.2)
    wait_log(e, "drain over: closing listeners", 5)
    assert e.wait_exit(10) == 0


def test_second_quit_cuts_the_delay_short(eddy):
    e = start(eddy, "30s")
    e.signal(signal.SIGQUIT)
    wait_log(e, "draining: health answers 503 for 30s")
    assert get(e, "/healthz")[0] == 503
    t0 = time.monotonic()
    e.signal(signal.SIGQUIT)
    assert e.wait_exit(5) == 0
    assert time.monotonic() - t0 < 3
    log = e.error_log
    assert "second QUIT: drain cut short" in log
    assert "drain over: closing listeners" in log


def test_term_during_drain_stops_at_once(eddy):
    e = start(eddy, "30s")
    e.signal(signal.SIGQUIT)
    wait_log(e, "draining: health answers 503 for 30s")
    t0 = time.monotonic()
    e.signal(signal.SIGTERM)
    assert e.wait_exit(5) == 0
    assert time.monotonic() - t0 < 3
    assert "fast shutdown" in e.error_log
    assert "drain over" not in e.error_log


def test_reload_refused_while_draining(eddy):
    e = start(eddy, "30s")
    e.signal(signal.SIGQUIT)
    wait_log(e, "draining: health answers 503 for 30s")
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 1, err
    assert "eddy: reload refused: draining" in err
    wait_log(e, "reload refused: draining")
    assert "reloading configuration" not in e.error_log
    # Still draining, on the same generation.
    assert get(e, "/healthz")[0] == 503
    e.signal(signal.SIGQUIT)
    assert e.wait_exit(5) == 0


def test_quit_waits_for_the_drain(eddy):
    """`eddy -s quit` waits drain_delay + shutdown_timeout + 5 s."""
    e = start(eddy, "2s")
    t0 = time.monotonic()
    rc, out, err = e.ctl("-s", "quit")
    assert rc == 0, err
    assert "eddy: stopped (pid %d)" % e.pid in err
    assert time.monotonic() - t0 >= 1.9


def test_no_drain_when_off(eddy):
    e = start(eddy, "0s")
    t0 = time.monotonic()
    e.signal(signal.SIGQUIT)
    assert e.wait_exit(5) == 0
    assert time.monotonic() - t0 < 1.5
    assert "draining:" not in e.error_log


def test_no_drain_after_winch(eddy):
    e = start(eddy, "30s")
    e.signal(signal.SIGWINCH)
    e.wait_workers(0, timeout=5)
    e.signal(signal.SIGQUIT)
    assert e.wait_exit(5) == 0
    assert "draining:" not in e.error_log


def test_no_drain_for_the_old_master_of_an_upgrade(eddy):
    e = start(eddy, "30s")
    pid_file = e.prefix / "logs" / "eddy.pid"
    oldbin = e.prefix / "logs" / "eddy.pid.oldbin"
    assert wait_for(pid_file.exists, 5)
    e.signal(signal.SIGUSR2)

    def new_master():
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if oldbin.exists() and pid != e.pid else None

    new_pid = wait_for(new_master, 10)
    assert new_pid, e.all_logs()
    e._seen_workers.add(new_pid)
    try:
        t0 = time.monotonic()
        e.signal(signal.SIGQUIT)
        assert e.wait_exit(5) == 0
        assert time.monotonic() - t0 < 3
        assert "draining:" not in e.error_log
        # The new master serves, not draining.
        assert wait_for(lambda: get(e, "/healthz")[0] == 200, 5)
        # Alone now, it drains on QUIT.
        os.kill(new_pid, signal.SIGQUIT)
        assert wait_for(lambda: get(e, "/healthz")[0] == 503, 5)
        os.kill(new_pid, signal.SIGQUIT)
        assert wait_for(lambda: not pid_alive(new_pid), 5)
    finally:
        if pid_alive(new_pid):
            os.kill(new_pid, signal.SIGKILL)


def ok_backend(req, conn):
    return response(200, b"up\n")


def test_require_upstreams(eddy):
    dead = free_port()
    with Backend(ok_backend) as b:
        e = eddy("""
workers: 1
upstreams:
  live:
    servers: [127.0.0.1:%d]
    health_check: {path: /, interval: 100ms, fails: 1}
  app:
    servers: [127.0.0.1:%d, 127.0.0.1:%d]
    health_check: {path: /, interval: 100ms, fails: 1}
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /live:
        health: {require_upstreams: [live]}
      = /both:
        health: {require_upstreams: [live, app]}
      = /plain:
        health: true
""" % (b.port, dead, dead))
        assert wait_for(lambda: get(e, "/both")[2] ==
                        b"upstream app down\n", 10)
        status, h, body, closed = get(e, "/both")
        assert status == 503 and h["content-type"] == ["text/plain"]
        assert h["cache-control"] == ["no-store"] and not closed
        assert get(e, "/live")[:3:2] == (200, b"ok\n")
        assert get(e, "/plain")[:3:2] == (200, b"ok\n")


def test_unknown_upstream_is_an_error(prefix):
    check_config_error(prefix, """
upstreams:
  app:
    servers: [127.0.0.1:1]
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /healthz:
        health: {require_upstreams: [app, apx]}
""", "apx", r'unknown upstream "apx" in health\.require_upstreams')


def test_bad_values_are_errors(prefix):
    check_config_error(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /healthz:
        health: maybe
""", "maybe", r"expected true, false or \{require_upstreams")
    check_config_error(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /healthz:
        health: {require: [app]}
""", "require", r'unknown key "require" in health')
    check_config_error(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /healthz:
        health: true
        return: 200
""", "health: true", r'"health" conflicts with another one')


def run_t(prefix, text):
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text.replace("{port}", str(free_port())))
    return run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t"], cwd=prefix)


def test_t_warns_on_drain_delay_without_health(prefix):
    text = """workers: 1
drain_delay: 5s
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: 204
"""
    rc, out, err = run_t(prefix, text)
    assert rc == 0, err
    assert 'conf/eddy.yaml:2:14: warning: drain_delay is set but no ' \
        'location uses "health": a balancer cannot see the drain' in err, err
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t",
                             "--strict"], cwd=prefix)
    assert rc == 1
    # With a health location, or without a delay: no warning.
    rc, out, err = run_t(prefix, text + "      /h:\n        health: true\n")
    assert rc == 0 and "warning" not in err, err
    rc, out, err = run_t(prefix, text.replace("5s", "0s"))
    assert rc == 0 and "warning" not in err, err
