"""The master speaks sd_notify itself (operator.md): READY=1 once it
serves, RELOADING=1 + MONOTONIC_USEC then READY=1 on HUP (good or bad
configuration), STOPPING=1 on QUIT and TERM, MAINPID after a binary
upgrade; abstract sockets; workers never send; -d is ignored."""

import array
import os
import re
import signal
import socket
import struct
import time

import pytest

from conftest import pid_alive, wait_for

CONFIG = """
workers: 2
shutdown_timeout: 3s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
access_log: off
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: {status: 200, body: "TAG\\n"}
"""


class Notify:
    """A datagram socket standing in for systemd's notification socket;
    each message is kept with the pid of its sender (SO_PASSCRED)."""

    def __init__(self, path, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            self.name = "@eddy-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + self.name[1:])
        else:
            self.name = str(path)
            self.sock.bind(self.name)
        self.messages = []   # (pid, {key: value}, raw text)

    def receive(self, timeout=10.0):
        """The next message, or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data, anc, _, _ = self.sock.recvmsg(
                4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        except socket.timeout:
            return None
        pid = None
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", cdata[:12])[0]
        text = data.decode()
        fields = dict(line.split("=", 1) for line in text.split("\n")
                      if "=" in line)
        msg = (pid, fields, text)
        self.messages.append(msg)
        return msg

    def wait_for(self, key, timeout=10.0):
        """Messages up to and including the first holding key."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.receive(deadline - time.monotonic())
            if m is None:
                break
            got.append(m)
            if key in m[1]:
                return got
        raise AssertionError("no %s in %r" % (key, [g[2] for g in got]))

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    made = []

    def make(abstract=False):
        n = Notify(tmp_path / "notify.sock", abstract)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def start(eddy, n, tag="g1", args=()):
    return eddy(CONFIG.replace("TAG", tag), env={"NOTIFY_SOCKET": n.name},
                args=args)


def test_ready_then_reload_then_stopping(eddy, notify):
    n = notify()
    e = start(eddy, n)
    pid, f, _ = n.wait_for("READY")[-1]
    assert pid == e.pid
    assert f["READY"] == "1"
    assert f["STATUS"] == "serving: generation 1, 2 workers, 1 listeners"
    assert e.get("/").text == "g1\n"

    # A good reload: RELOADING=1 with the monotonic clock at once, then
    # READY=1 when the new generation serves.
    e.write_config(CONFIG.replace("TAG", "g2"))
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    e.signal(signal.SIGHUP)
    msgs = n.wait_for("READY")
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert "RELOADING" in msgs[0][1], msgs
    assert msgs[0][1]["RELOADING"] == "1"
    assert before <= int(msgs[0][1]["MONOTONIC_USEC"]) <= after
    assert msgs[-1][1]["STATUS"] == \
        "serving: generation 2, 2 workers, 1 listeners"
    assert wait_for(lambda: e.get("/").text == "g2\n", 5)

    # A bad one: RELOADING=1, then READY=1 saying it failed.
    e.write_config("workers: 2\nservers: [{listen: 127.0.0.1:%d, "
                   "nonsense: 1}]\n" % e.port)
    e.signal(signal.SIGHUP)
    msgs = n.wait_for("READY")
    assert msgs[0][1].get("RELOADING") == "1" and \
        "MONOTONIC_USEC" in msgs[0][1], msgs
    assert msgs[-1][1]["STATUS"] == "reload failed: keeping generation 2"
    assert e.get("/").text == "g2\n"

    # QUIT: STOPPING=1, what drains and how much longer it may take
    # (shutdown_timeout 3 s + 5 s).
    e.signal(signal.SIGQUIT)
    pid, f, _ = n.wait_for("STOPPING")[-1]
    assert f["STOPPING"] == "1"
    # The client's last connection may still be closing on the server's
    # side: the count is whatever is open at that moment.
    assert re.fullmatch(r"draining: \d+ connections", f["STATUS"]), f
    assert f["EXTEND_TIMEOUT_USEC"] == "8000000"
    assert e.wait_exit(10) == 0
    # Only the master spoke.
    assert {m[0] for m in n.messages} == {e.pid}, n.messages


def test_term_sends_stopping(eddy, notify):
    n = notify()
    e = start(eddy, n)
    n.wait_for("READY")
    e.signal(signal.SIGTERM)
    pid, f, _ = n.wait_for("STOPPING")[-1]
    assert f["STOPPING"] == "1" and pid == e.pid
    assert e.wait_exit(10) == 0


def test_abstract_socket(eddy, notify):
    n = notify(abstract=True)
    assert n.name.startswith("@")
    e = start(eddy, n)
    pid, f, _ = n.wait_for("READY")[-1]
    assert pid == e.pid and f["READY"] == "1"


def test_daemon_ignored_with_notify_socket(eddy, notify):
    n = notify()
    e = start(eddy, n, args=["-d"])
    n.wait_for("READY")
    # Still the process systemd started, in the foreground.
    assert e.running()
    assert (e.prefix / "logs" / "eddy.pid").read_text().strip() == \
        str(e.pid)
    assert "eddy: warning: -d and \"daemon: true\" are ignored when " \
        "NOTIFY_SOCKET is set" in e.stderr_text()


def test_upgrade_sends_mainpid(eddy, notify):
    n = notify()
    e = start(eddy, n)
    n.wait_for("READY")
    e.signal(signal.SIGUSR2)
    pid, f, _ = n.wait_for("MAINPID", timeout=15)[-1]
    new = int(f["MAINPID"])
    assert new != e.pid and pid == new
    assert f["READY"] == "1"
    assert wait_for(lambda: (e.prefix / "logs" / "eddy.pid").read_text()
                    .strip() == str(new), 5)
    os.kill(new, signal.SIGQUIT)
    assert wait_for(lambda: not pid_alive(new), 10)


def test_quit_with_drain_delay_says_draining(eddy, notify):
    """QUIT with drain_delay: STOPPING=1 and the drain at once, the time
    to allow covering drain_delay + shutdown_timeout + 5 s; then, when
    the listeners close, the connections left."""
    n = notify()
    e = eddy(CONFIG.replace("TAG", "g1").replace(
        "workers: 2\n", "workers: 2\ndrain_delay: 2s\n") +
        "      /h:\n        health: true\n",
        env={"NOTIFY_SOCKET": n.name})
    n.wait_for("READY")
    e.signal(signal.SIGQUIT)
    pid, f, _ = n.wait_for("STOPPING")[-1]
    assert pid == e.pid
    assert f["STATUS"] == "draining: health answers 503 for 2s"
    assert f["EXTEND_TIMEOUT_USEC"] == "10000000"
    pid, f, _ = n.wait_for("EXTEND_TIMEOUT_USEC", 5)[-1]
    assert re.fullmatch(r"draining: \d+ connections", f["STATUS"]), f
    assert e.wait_exit(10) == 0
