"""Running eddy (operator.md): -s quit and -s stop wait for the master to
exit, bounded; -s reopen/quit/stop need only pid_file; -d returns once
the master serves (0) or failed (2, the error printed), with the error
log file as the daemon's stderr; the notice lines at start and reload."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import EDDY_BIN, free_ports, pid_alive, run_eddy, wait_for
from proxy_backend import Backend, response


def slow_handler(req, conn):
    time.sleep(2)
    return response(200, b"slow done")


def test_quit_waits_for_the_master_with_a_request_in_flight(eddy):
    backend = Backend(slow_handler)
    try:
        e = eddy("""
            workers: 1
            shutdown_timeout: 10s
            pid_file: logs/eddy.pid
            error_log: logs/error.log
            access_log: off
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: "http://127.0.0.1:%d"}
            """ % backend.port)
        result = {}

        def client():
            result["r"] = e.get("/slow", timeout=10)

        t = threading.Thread(target=client, daemon=True)
        t.start()
        time.sleep(0.4)
        start = time.monotonic()
        rc, out, err = e.ctl("-s", "quit", timeout=20)
        took = time.monotonic() - start
        assert rc == 0, err
        assert err == "eddy: stopped (pid %d)\n" % e.pid
        # Returned only once the master was gone, after the request.
        assert not pid_alive(e.pid)
        assert took >= 1.2, took
        t.join(5)
        assert result["r"].status == 200 and result["r"].body == b"slow done"
    finally:
        backend.close()


def test_stop_waits_for_the_master(eddy):
    e = eddy("""
        workers: 2
        pid_file: logs/eddy.pid
        servers:
          - listen: 127.0.0.1:{port}
            locations: {/: {return: 204}}
        """)
    # The port may accept before the master has written its pid file.
    assert wait_for(lambda: (e.prefix / "logs/eddy.pid").exists(), 5)
    rc, out, err = e.ctl("-s", "stop")
    assert rc == 0, err
    assert err == "eddy: stopped (pid %d)\n" % e.pid
    assert not pid_alive(e.pid)


def test_quit_gives_up_after_shutdown_timeout_plus_5s(eddy):
    e = eddy("""
        workers: 1
        shutdown_timeout: 1s
        pid_file: logs/eddy.pid
        servers:
          - listen: 127.0.0.1:{port}
            locations: {/: {return: 204}}
        """)
    os.kill(e.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        rc, out, err = e.ctl("-s", "quit", timeout=20)
        took = time.monotonic() - start
    finally:
        os.kill(e.pid, signal.SIGCONT)
    assert rc == 1
    assert err == "eddy: master (pid %d) still running after 6 s\n" % e.pid
    assert 5.5 <= took <= 9, took
    # Once it runs again, it handles the QUIT it was sent.
    assert e.wait_exit(10) == 0


def test_quit_and_reopen_need_only_the_pid_file(eddy):
    e = eddy("""
        workers: 1
        pid_file: logs/eddy.pid
        error_log: logs/error.log
        servers:
          - listen: 127.0.0.1:{port}
            locations: {/: {return: 204}}
        """)
    # The file now has an error elsewhere than pid_file.
    text = e.conf_path.read_text().replace("workers: 1", "workers: 1\n"
                                           "no_such_key: 1")
    e.conf_path.write_text(text)
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 1
    assert "unknown key \"no_such_key\"" in err, err
    rc, out, err = e.ctl("-s", "reopen")
    assert rc == 0, err
    assert "eddy: warning: the configuration has errors (eddy -t lists " \
        "them); using pid_file %s/logs/eddy.pid" % e.prefix in err
    assert wait_for(lambda: "reopening logs" in e.error_log, 5)
    rc, out, err = e.ctl("-s", "quit")
    assert rc == 0, err
    assert err.endswith("eddy: stopped (pid %d)\n" % e.pid), err


def test_quit_with_broken_yaml_uses_the_default_pid_file(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            locations: {/: {return: 204}}
        """)
    e.conf_path.write_text("workers: [1\n")
    rc, out, err = e.ctl("-s", "stop")
    assert rc == 0, err
    assert "eddy: stopped (pid %d)" % e.pid in err


# --------------------------------------------------------------------------
# -d


def daemon_run(prefix, text, timeout=15):
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    p = subprocess.run([str(EDDY_BIN), "-p", str(prefix), "-c", str(conf),
                        "-d"], cwd=str(prefix), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def kill_daemon(prefix):
    try:
        pid = int((prefix / "logs" / "eddy.pid").read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGKILL)
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


@pytest.mark.parametrize("how", ["set", "default"])
def test_daemon_with_stderr_logs_to_the_baked_file(prefix, how):
    port = free_ports(1)[0]
    text = """workers: 2
pid_file: logs/eddy.pid
%s
events: {max_connections: 512}
servers:
  - listen: 127.0.0.1:%d
    names: [a.example, b.example]
    locations: {/: {return: 204}}
""" % ("error_log: {path: stderr, level: info}" if how == "set" else "",
       port)
    rc, out, err = daemon_run(prefix, text)
    try:
        v = run_eddy(["-V"])[1]
        path = re.search(r"^error log path: (.*)$", v, re.M).group(1)
        if not path.startswith("/"):
            path = "%s/%s" % (prefix, path)
        assert rc == 0, err
        assert out == ""
        assert err == "eddy: daemon logs to %s\n" % path
        pid = int((prefix / "logs" / "eddy.pid").read_text())
        assert pid_alive(pid)
        assert os.readlink("/proc/%d/fd/0" % pid) == "/dev/null"
        assert os.readlink("/proc/%d/fd/1" % pid) == "/dev/null"
        assert os.readlink("/proc/%d/fd/2" % pid) == path
        log = open(path).read()
        conf = prefix / "conf" / "eddy.yaml"
        assert re.search(r"\[notice\] %d#0: listening on 127\.0\.0\.1:%d "
                         r"\(http\) for a\.example, b\.example; default: "
                         r"%s:6:5\n" % (pid, port, re.escape(str(conf))),
                         log), log
        assert "generation 1 started: 2 workers, max_connections 512 " \
            "each" in log, log
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-s", "quit"])
        assert rc == 0 and err == "eddy: stopped (pid %d)\n" % pid, err
    finally:
        kill_daemon(prefix)


def test_daemon_bind_failure_exits_2(prefix):
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)
    port = hold.getsockname()[1]
    try:
        rc, out, err = daemon_run(prefix, """workers: 1
servers:
  - listen: 127.0.0.1:%d
    locations: {/: {return: 204}}
""" % port)
    finally:
        hold.close()
        kill_daemon(prefix)
    assert rc == 2
    assert "bind() to 127.0.0.1:%d failed" % port in err, err
    assert not (prefix / "logs" / "eddy.pid").exists()


def test_daemon_failure_after_detaching_exits_2_with_the_error(prefix):
    # The check at load passes (the directory exists), the write after
    # detaching fails: the pid file's path is a directory.
    (prefix / "logs" / "piddir").mkdir()
    port = free_ports(1)[0]
    try:
        rc, out, err = daemon_run(prefix, """workers: 1
pid_file: logs/piddir
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:%d
    locations: {/: {return: 204}}
""" % port)
    finally:
        kill_daemon(prefix)
    assert rc == 2, err
    assert re.search(r"^eddy: cannot write pid file %s/logs/piddir "
                     % re.escape(str(prefix)), err, re.M), err
    assert "cannot write pid file" in \
        (prefix / "logs" / "error.log").read_text()


# --------------------------------------------------------------------------
# notice lines


def test_listening_lines_at_start_and_reload(eddy):
    e = eddy("""
        workers: auto
        error_log: {path: logs/error.log, level: notice}
        servers:
          - listen: [127.0.0.1:{port0}]
            names: [one.example]
            locations: {/: {return: 204}}
          - listen: [{address: "127.0.0.1:{port0}", default: true}, 127.0.0.1:{port1}]
            locations: {/: {return: 204}}
        """, ports=2)
    conf = str(e.conf_path)
    port2 = free_ports(1)[0]
    cpus = os.sysconf("SC_NPROCESSORS_ONLN")
    log = e.error_log
    assert "listening on 127.0.0.1:%d (http) for one.example; default: " \
        "%s:7:5\n" % (e.ports[0], conf) in log, log
    assert "listening on 127.0.0.1:%d (http) for no names; default: " \
        "%s:7:5\n" % (e.ports[1], conf) in log, log
    assert "generation 1 started: %d workers (auto: %d CPUs), " \
        "max_connections 10000 each" % (cpus, cpus) in log, log
    # Drop port1, add port2.
    e.write_config("""
        workers: 1
        error_log: {path: logs/error.log, level: notice}
        servers:
          - listen: [127.0.0.1:{port0}, 127.0.0.1:PORT2]
            names: [one.example, two.example]
            locations: {/: {return: 204}}
        """.replace("PORT2", str(port2)))
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 0, err
    log = e.error_log
    assert "listening on 127.0.0.1:%d (http) for one.example, two.example; " \
        "default: %s:4:5\n" % (e.ports[0], conf) in log, log
    assert "listening on 127.0.0.1:%d (new) (http) for one.example, " \
        "two.example; default: %s:4:5\n" % (port2, conf) in log, log
    assert "no longer listening on 127.0.0.1:%d\n" % e.ports[1] in log, log
    assert "generation 2 started: 1 workers, max_connections 10000 each" \
        in log, log
