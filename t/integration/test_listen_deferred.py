"""`deferred` on listen items (TCP_DEFER_ACCEPT, on by default): the
kernel hands a connection to eddy only once its first bytes arrived, so
a silent connection stays a half-open request socket (SYN_RECV on the
server side) while the client sees it established."""

import signal
import socket
import time

from conftest import check_config_error, read_until_close


def server_states(port):
    """The TCP states (hex, as /proc/net/tcp) of server-side sockets on
    127.0.0.1:port, listeners excepted."""
    states = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.split(":")[1], 16) == port and state != "0A":
                states.append(state)
    return states


def silent_state(port):
    s = socket.create_connection(("127.0.0.1", port), 2)
    try:
        time.sleep(0.3)
        return server_states(port)
    finally:
        s.close()


CONFIG = """
workers: 1
servers:
  - listen:
      - 127.0.0.1:{port0}
      - {address: 127.0.0.1:{port1}, deferred: %s}
    locations:
      /: {return: {status: 200, body: "ok\\n"}}
"""


def test_deferred_by_default_and_off(eddy):
    e = eddy(CONFIG % "false", ports=2)
    # Default: the silent connection is not accepted yet (SYN_RECV).
    assert silent_state(e.ports[0]) == ["03"]
    # deferred: false: accepted at once (ESTABLISHED).
    assert silent_state(e.ports[1]) == ["01"]
    # A client that speaks is served on both.
    for p in e.ports:
        r = e.get("/", port=p)
        assert r.status == 200 and r.body == b"ok\n"


def test_deferred_changed_by_reload(eddy):
    """The listening socket is kept across a reload; the option follows
    the new configuration on it."""
    e = eddy(CONFIG % "true", ports=2)
    assert silent_state(e.ports[1]) == ["03"]
    old = e.wait_workers(1)
    e.write_config(CONFIG % "false")
    e.signal(signal.SIGHUP)
    e.wait_workers(1, exclude=old)
    assert silent_state(e.ports[1]) == ["01"]
    assert silent_state(e.ports[0]) == ["03"]


def test_silent_connection_still_times_out(eddy):
    """A client that connects and says nothing is handed over after about
    a second, then client_header_timeout closes it."""
    conf = CONFIG.replace("workers: 1", "workers: 1\nclient_header_timeout: 1s")
    e = eddy(conf % "true", ports=2)
    s = socket.create_connection(("127.0.0.1", e.ports[0]), 2)
    t0 = time.monotonic()
    data, closed = read_until_close(s, 8)
    s.close()
    assert closed and data.startswith(b"HTTP/1.1 408 "), data
    assert 1.5 < time.monotonic() - t0 < 7


def test_deferred_must_agree_on_an_address(prefix):
    check_config_error(prefix, """
servers:
  - listen: 127.0.0.1:{port}
  - listen: [{address: 127.0.0.1:{port}, deferred: false}]
""", "127.0.0.1:",
        r'listen address "127\.0\.0\.1:\d+" is used both with and without '
        r'deferred', nth=2)
