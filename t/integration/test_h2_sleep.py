"""An idle HTTP/2 connection sleeps (its nghttp2 session's pages are
encoded and given back to the kernel, a second after its last stream)
and wakes at the next event exactly where it was: HPACK tables both
ways, flow-control windows, settings, stream ids; and an asleep
connection takes a reload's GOAWAY, its idle timeout and a fast stop."""

import hashlib
import os
import signal
import socket
import time

from conftest import wait_for
from h2util import H2, NO_ERROR
from proxy_backend import Backend, response

CONFIG = r"""
workers: 1
shutdown_timeout: 10s
error_log: {path: logs/error.log, level: debug}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    root: html
    http2: {idle_timeout: @IDLE@}
    client_max_body_size: 10m
    locations:
      /:
        static: {}
      /up/:
        proxy: {pass: "http://127.0.0.1:@BACKEND@"}
      = /hdr:
        headers: {set: {X-Echo: "$http_x_token", X-Fixed: "same-every-time"}}
        return: {status: 200, body: "ok\n"}
"""


def config(backend=1, idle="60s"):
    return CONFIG.replace("@BACKEND@", str(backend)).replace("@IDLE@", idle)


def asleep_count(e):
    return e.log_text().count("http2 session asleep")


def wait_asleep(e, n, timeout=5.0):
    assert wait_for(lambda: asleep_count(e) >= n, timeout), \
        "no sleep %d: %s" % (n, e.log_text()[-2000:])


def echo_handler(req, conn):
    return response(200, hashlib.sha256(req.body).hexdigest().encode())


def test_asleep_connection_goes_on_where_it_was(eddy):
    """Three sleeps on one connection, each followed by requests whose
    fields the client sends as HPACK indexes of its dynamic table (eddy's
    decoder must still hold them), answers whose fields eddy sends as
    indexes of its own (the client's decoder holds those), uploads past
    the initial windows (eddy's windows and consumed counts must be
    right), a PING and a SETTINGS change."""
    with Backend(echo_handler) as b:
        e = hello_eddy(eddy, backend=b.port)
        c = H2(e.port)
        try:
            token = "t-" + "x" * 40
            body = os.urandom(150_000)
            for cycle in range(3):
                for i in range(3):
                    st = c.get("/hdr", headers=[("x-token", token),
                                                ("user-agent", "sleepy/1.0")])
                    assert st.status == 200, (cycle, i, st)
                    assert st.header("x-echo") == token
                    assert st.header("x-fixed") == "same-every-time"
                    assert st.body == b"ok\n"
                    st = c.get("/index.html")
                    assert st.status == 200 and st.body == b"hello\n"
                sid = c.request("/up/x", method="POST", body=body)
                st = c.wait(sid, timeout=10)
                assert st.status == 200, st
                assert st.body == hashlib.sha256(body).hexdigest().encode()
                wait_asleep(e, cycle + 1)
                if cycle == 1:
                    c.conn.ping(b"sleeping")
                    c.flush()
                    assert wait_for(lambda: c.recv(0.2) and c.pings == 1, 5)
                    # A smaller initial window for new streams.
                    c.conn.update_settings({4: 20_000})
                    c.flush()
            assert c.goaway is None
            assert not c.closed
        finally:
            c.close()
    assert "http2 session error" not in e.log_text()


def hello_eddy(eddy, **kw):
    """eddy serving html/index.html ("hello")."""
    e = eddy(config(**kw), start=False)
    e.write_file("html/index.html", b"hello\n")
    e.start()
    return e


def asleep_clients(e, n):
    """n connections, each with one GET answered, then all asleep."""
    conns = []
    for _ in range(n):
        c = H2(e.port)
        conns.append(c)
        assert c.get("/index.html").body == b"hello\n"
    wait_asleep(e, n)
    return conns


def close_all(conns):
    for c in conns:
        c.close()


def test_asleep_connection_idle_timeout_sends_goaway(eddy):
    e = hello_eddy(eddy, idle="3s")
    conns = asleep_clients(e, 1)
    try:
        assert conns[0].wait_goaway(timeout=6) == (NO_ERROR, 1)
        assert conns[0].wait_closed(timeout=5)
    finally:
        close_all(conns)


def test_connection_woken_without_a_stream_sleeps_again(eddy):
    """A PING (a client's liveness check) wakes an asleep connection and
    starts no stream: a second later it sleeps again (awake, its pages
    take their memory back for the rest of idle_timeout). The PING does
    not push idle_timeout back: the GOAWAY comes 4 s after the last
    stream."""
    e = hello_eddy(eddy, idle="4s")
    c = H2(e.port)
    try:
        assert c.get("/index.html").body == b"hello\n"
        ended = time.monotonic()
        wait_asleep(e, 1)
        c.conn.ping(b"are-you?")
        c.flush()
        assert wait_for(lambda: c.recv(0.2) and c.pings == 1, 3)
        wait_asleep(e, 2, timeout=2.5)
        assert c.wait_goaway(timeout=5) == (NO_ERROR, 1)
        assert 3.5 < time.monotonic() - ended < 4.8
    finally:
        c.close()


def test_reload_wakes_asleep_connections(eddy):
    """The reload's graceful GOAWAY reaches connections that sleep; the
    old worker exits once their clients close."""
    e = hello_eddy(eddy)
    old = e.worker_pids()[0]
    conns = asleep_clients(e, 5)
    try:
        e.signal(signal.SIGHUP)
        for c in conns:
            assert c.wait_goaway(timeout=6) is not None
            assert c.goaway[0] == NO_ERROR
    finally:
        close_all(conns)
    assert wait_for(lambda: not os.path.exists("/proc/%d" % old)
                    or open("/proc/%d/stat" % old).read().split()[2] == "Z",
                    10)
    conns = asleep_clients(e, 1)
    close_all(conns)


def test_stop_with_asleep_connections(eddy):
    """A fast stop drops asleep sessions without waking them: the worker
    exits cleanly (the sanitizer build checks for leaks)."""
    e = hello_eddy(eddy)
    conns = asleep_clients(e, 3)
    try:
        e.signal(signal.SIGTERM)
        assert e.wait_exit(10) == 0
    finally:
        close_all(conns)
    assert "[alert]" not in e.log_text()


def test_client_close_while_asleep(eddy):
    """A client that leaves while its connection sleeps: the connection
    is dropped without waking, and the worker serves on."""
    e = hello_eddy(eddy)
    pid = e.worker_pids()[0]
    conns = asleep_clients(e, 4)
    for c in conns:
        c.sock.shutdown(socket.SHUT_RDWR)
    close_all(conns)
    time.sleep(0.3)
    c = H2(e.port)
    try:
        assert c.get("/index.html").body == b"hello\n"
    finally:
        c.close()
    assert e.worker_pids() == [pid]


def test_connection_sleeps_after_a_burst_of_streams(eddy):
    """40 streams in flight at once: nghttp2's blocks overflow the
    connection's pages, and some it keeps (HPACK entries) are blocks of
    the worker's lists. The connection sleeps all the same, wakes where
    it was, and one that ends asleep (its client leaves, the server
    stops) frees those blocks (the sanitizer build checks for leaks)."""
    e = hello_eddy(eddy)
    conns = [H2(e.port)]
    try:
        for n in range(4):
            if n == 1:
                conns.append(H2(e.port))
            c = conns[n % 2]
            tokens = ["b%d-%d" % (n, i) for i in range(40)]
            sids = [c.request("/hdr", headers=[("x-token", t)])
                    for t in tokens]
            for sid, token in zip(sids, tokens):
                st = c.wait(sid)
                assert st.status == 200, st
                assert st.header("x-echo") == token
                assert st.body == b"ok\n"
            wait_asleep(e, n + 1)
        conns[0].sock.shutdown(socket.SHUT_RDWR)
        conns[0].close()
        assert conns[1].get("/index.html").body == b"hello\n"
        wait_asleep(e, 5)
        e.signal(signal.SIGTERM)
        assert e.wait_exit(10) == 0
    finally:
        close_all(conns)
    assert "[alert]" not in e.log_text()
