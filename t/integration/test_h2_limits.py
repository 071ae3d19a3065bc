"""HTTP/2 protections and lifecycle (spec/http2.md): each flood trips its
named limit with GOAWAY(ENHANCE_YOUR_CALM), the warn line and a close;
streams over max_concurrent_streams are refused; SETTINGS over 32 entries;
idle_timeout, keepalive_requests and quit end with GOAWAY(NO_ERROR), the
streams in flight completing; a stream whose window stays shut is reset
after send_timeout; the first SETTINGS carry the configured values."""

import os
import signal
import socket
import struct
import time

import pytest

from h2util import (H2, CANCEL, ENHANCE_YOUR_CALM, NO_ERROR, REFUSED_STREAM,
                    Raw, hf)

CONFIG = r"""
workers: 1
shutdown_timeout: 5s
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    names: [flood.test]
    root: html
    send_timeout: 1s
    keepalive_requests: %(requests)s
    http2: {max_concurrent_streams: 8, idle_timeout: %(idle)s, initial_window_size: 32k, max_frame_size: 32k}
    locations:
      /:
        static: {}
      = /slow:
        proxy: {pass: "http://127.0.0.1:%(backend)s"}
"""


def config(requests=1000, idle="75s", backend=1):
    return CONFIG % {"requests": requests, "idle": idle, "backend": backend}


@pytest.fixture
def srv(eddy):
    e = eddy(config(), start=False)
    e.write_file("html/index.html", b"hi\n")
    e.write_file("html/big.bin", os.urandom(400 * 1024))
    return e.start()


def flood_checked(srv, raw, limit):
    g = raw.goaway()
    assert g is not None and g.error_code == ENHANCE_YOUR_CALM
    assert raw.wait_closed(3)
    assert ('http2 flood "%s" detected, closing connection, client: '
            '127.0.0.1, server: flood.test' % limit) in srv.error_log
    assert "[warn]" in srv.error_log


def test_first_settings(srv):
    raw = Raw(srv.port)
    f = raw.until(lambda f: isinstance(f, hf.SettingsFrame)
                  and "ACK" not in f.flags)
    s = dict(f.settings)
    assert s[hf.SettingsFrame.MAX_CONCURRENT_STREAMS] == 8
    assert s[hf.SettingsFrame.INITIAL_WINDOW_SIZE] == 32768
    assert s[hf.SettingsFrame.MAX_FRAME_SIZE] == 32768
    assert s[hf.SettingsFrame.HEADER_TABLE_SIZE] == 4096
    assert s[hf.SettingsFrame.MAX_HEADER_LIST_SIZE] == 8192 + 32 * 105
    assert s[0x8] == 1   # ENABLE_CONNECT_PROTOCOL
    assert s[0x9] == 1   # NO_RFC7540_PRIORITIES
    w = raw.until(lambda f: isinstance(f, hf.WindowUpdateFrame)
                  and f.stream_id == 0)
    assert w.window_increment == 1024 * 1024 - 65535
    raw.close()


def test_rapid_reset_flood(srv):
    raw = Raw(srv.port)
    frames = []
    for i in range(40):
        sid = 1 + 2 * i
        frames.append(raw.headers(sid, raw.get_fields("/index.html"),
                                  end_stream=False))
        frames.append(hf.RstStreamFrame(sid, error_code=CANCEL))
    raw.send(*frames)
    flood_checked(srv, raw, "resets")


def test_continuation_flood(srv):
    raw = Raw(srv.port)
    block = raw.enc.encode(raw.get_fields("/index.html"))
    h = hf.HeadersFrame(1)
    h.data = block
    h.flags = set(["END_STREAM"])
    out = [h]
    for i in range(6):
        c = hf.ContinuationFrame(1)
        c.data = raw.enc.encode([("x-%d" % i, "v")])
        c.flags = set()
        out.append(c)
    raw.send(*out)
    flood_checked(srv, raw, "continuations")


@pytest.mark.parametrize("kind", ["ping", "priority", "empty_data",
                                  "priority_update"])
def test_control_flood(srv, kind):
    raw = Raw(srv.port)
    if kind == "priority_update":
        # RFC 9218: type 0x10 on stream 0, prioritized stream 1, "u=1".
        frames = [b"\x00\x00\x07\x10\x00\x00\x00\x00\x00"
                  b"\x00\x00\x00\x01u=1" for _ in range(1100)]
    elif kind == "ping":
        frames = [hf.PingFrame(0, opaque_data=b"12345678")
                  for _ in range(1100)]
    elif kind == "priority":
        frames = [hf.PriorityFrame(1, depends_on=0, stream_weight=16)
                  for _ in range(1100)]
    else:
        frames = [raw.headers(1, raw.get_fields("/") + [("content-length",
                                                         "1")],
                              end_stream=False)]
        frames += [hf.DataFrame(1, data=b"") for _ in range(1100)]
    raw.send(*frames)
    flood_checked(srv, raw, "control")


def test_flood_goaway_survives_unread_input(srv):
    """The client's frames keep coming after the flood is detected: eddy
    shuts its side and drains them for a while (as HTTP/1's lingering
    close) instead of closing under them, which would reset the
    connection and fail the client's writes before it reads the GOAWAY."""
    raw = Raw(srv.port)
    ping = hf.PingFrame(0, opaque_data=b"12345678").serialize()
    raw.send(ping * 1100)
    time.sleep(0.3)
    for _ in range(4):
        raw.send(ping * 1000)
        time.sleep(0.05)
    assert not raw.closed
    flood_checked(srv, raw, "control")
    raw.close()


def test_window_update_flood(srv):
    raw = Raw(srv.port)
    raw.send(*[hf.WindowUpdateFrame(0, window_increment=1)
               for _ in range(200)])
    flood_checked(srv, raw, "window_updates")


def test_settings_with_too_many_entries(srv):
    raw = Raw(srv.port)
    f = hf.SettingsFrame(0)
    f.settings = {0x100 + i: 1 for i in range(40)}
    raw.send(f)
    g = raw.goaway()
    assert g is not None and g.error_code == ENHANCE_YOUR_CALM
    raw.close()


def test_streams_over_limit_refused(srv):
    # The client ignores MAX_CONCURRENT_STREAMS before the ACK: refused.
    raw = Raw(srv.port, settings=False)
    frames = [raw.headers(1 + 2 * i, raw.get_fields("/index.html"),
                          end_stream=False) for i in range(10)]
    raw.send(hf.SettingsFrame(0), *frames)
    f = raw.until(lambda f: isinstance(f, hf.RstStreamFrame)
                  and f.error_code == REFUSED_STREAM)
    assert f is not None and f.stream_id in (17, 19)
    raw.close()


def test_idle_timeout_goaway(eddy):
    e = eddy(config(idle="300ms"), start=False)
    e.write_file("html/index.html", b"hi\n")
    e.start()
    c = H2(e.port)
    st = c.get("/index.html")
    assert st.status == 200
    t0 = time.monotonic()
    g = c.wait_goaway(3)
    assert g is not None and g[0] == NO_ERROR
    assert c.wait_closed(3)
    assert time.monotonic() - t0 < 2


def goaways(raw):
    return [f for f in raw.frames if isinstance(f, hf.GoAwayFrame)]


def ended(raw, sid):
    return raw.until(lambda f: f.stream_id == sid and "END_STREAM" in f.flags
                     and isinstance(f, (hf.DataFrame, hf.HeadersFrame)))


def test_keepalive_requests_goaway(eddy):
    e = eddy(config(requests=3), start=False)
    e.write_file("html/index.html", b"hi\n")
    e.start()
    raw = Raw(e.port)
    raw.send(*[raw.headers(sid, raw.get_fields("/index.html"))
               for sid in (1, 3, 5)])
    for sid in (1, 3, 5):
        assert ended(raw, sid) is not None
    assert raw.wait_closed(3)
    g = goaways(raw)
    # The graceful pair: 2^31-1 first, then the last stream begun.
    assert g[0].last_stream_id == 2 ** 31 - 1 and g[0].error_code == NO_ERROR
    assert g[-1].last_stream_id == 5 and g[-1].error_code == NO_ERROR


def test_quit_finishes_streams_in_flight(eddy):
    from proxy_backend import Backend, TAKEN

    def handler(req, conn):
        time.sleep(0.5)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow\n")
        return TAKEN

    with Backend(handler) as b:
        e = eddy(config(backend=b.port), start=False)
        e.write_file("html/index.html", b"hi\n")
        e.start()
        raw = Raw(e.port)
        raw.send(raw.headers(1, raw.get_fields("/slow")))
        b.wait_requests(1)
        e.signal(signal.SIGQUIT)
        g = raw.goaway()
        assert g is not None and g.last_stream_id == 2 ** 31 - 1
        # The PING is answered; the second GOAWAY names stream 1.
        p = raw.until(lambda f: isinstance(f, hf.PingFrame)
                      and "ACK" not in f.flags)
        raw.send(hf.PingFrame(0, opaque_data=p.opaque_data, flags=["ACK"]))
        g = raw.until(lambda f: isinstance(f, hf.GoAwayFrame)
                      and f.last_stream_id == 1)
        assert g is not None and g.error_code == NO_ERROR
        d = raw.until(lambda f: isinstance(f, hf.DataFrame)
                      and f.stream_id == 1)
        assert d is not None and d.data == b"slow\n"
        assert raw.wait_closed(5)
        e.wait_exit(5)


def test_zero_window_stream_reset_after_send_timeout(srv):
    # A window of 0 for the stream: the body cannot go; send_timeout (1s)
    # resets it with CANCEL, the connection stays for the others.
    c = H2(srv.port, settings={hf.SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    c.recv(0.3)
    sid = c.request("/big.bin")
    st = c.wait(sid, 4)
    assert st.reset == CANCEL
    c.conn.update_settings({hf.SettingsFrame.INITIAL_WINDOW_SIZE: 65535})
    c.flush()
    st = c.get("/index.html")
    assert st.status == 200 and st.body == b"hi\n"
    c.close()


def test_bad_preface_closes(srv):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x09"
              + b"\x00" * 9)
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except OSError:
        pass
    s.close()
    # A GOAWAY (type 7) was sent before the close.
    assert b"\x07\x00\x00\x00\x00\x00" in data


def test_status_counters(eddy):
    import json

    e = eddy("""
workers: 1
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    names: [flood.test]
    locations:
      /:
        return: {status: 200, body: "ok\\n"}
      = /status:
        status: json
      = /metrics:
        status: prometheus
""")
    c = H2(e.port)
    assert c.get("/").status == 200
    c.close()
    raw = Raw(e.port)
    raw.send(*[hf.PingFrame(0, opaque_data=b"12345678")
               for _ in range(1100)])
    assert raw.goaway() is not None
    raw.wait_closed(3)
    e.get("/")

    def counters():
        j = json.loads(e.get("/status").body)["http2"]
        return j if j["floods"]["control"] == 1 else None

    from conftest import wait_for
    j = wait_for(counters, 5)
    assert j, e.get("/status").body
    assert j["requests_by_protocol"]["HTTP/2.0"] == 1
    assert j["requests_by_protocol"]["HTTP/1.1"] >= 1
    assert j["connections"]["h2c"] == 2 and j["connections"]["h2"] == 0
    assert j["goaway_sent"]["11"] == 1
    text = e.get("/metrics").body.decode()
    assert 'eddy_http2_floods_total{limit="control"} 1' in text
    assert 'eddy_requests_by_protocol_total{protocol="HTTP/2.0"} 1' in text
    assert 'eddy_http2_goaway_sent_total{code="11"} 1' in text


def test_header_block_left_open_is_a_flood(eddy):
    e = eddy(config().replace("send_timeout: 1s",
                              "send_timeout: 1s\n    client_header_timeout: 500ms"),
             start=False)
    e.write_file("html/index.html", b"hi\n")
    e.start()
    raw = Raw(e.port)
    raw.autoack = False     # nothing but CONTINUATION may follow
    raw.send(raw.headers(1, raw.get_fields("/index.html"),
                         end_headers=False))
    t0 = time.monotonic()
    g = raw.goaway(3)
    assert g is not None and g.error_code == ENHANCE_YOUR_CALM
    assert 0.3 < time.monotonic() - t0 < 2.5
    assert 'http2 flood "continuations" detected' in e.error_log


def test_reload_finishes_streams_in_flight(eddy):
    from proxy_backend import Backend, TAKEN

    def handler(req, conn):
        time.sleep(0.5)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nslow\n")
        return TAKEN

    with Backend(handler) as b:
        e = eddy(config(backend=b.port), start=False)
        e.write_file("html/index.html", b"hi\n")
        e.start()
        raw = Raw(e.port)
        raw.send(raw.headers(1, raw.get_fields("/slow")),
                 raw.headers(3, raw.get_fields("/slow")))
        b.wait_requests(2)
        e.signal(signal.SIGHUP)
        g = raw.goaway(5)
        assert g is not None and g.last_stream_id == 2 ** 31 - 1
        for sid in (1, 3):
            d = raw.until(lambda f: isinstance(f, hf.DataFrame)
                          and f.stream_id == sid)
            assert d is not None and d.data == b"slow\n"
        assert raw.wait_closed(5)
        # The new generation serves.
        c = H2(e.port)
        assert c.get("/index.html").status == 200
        c.close()


def test_ping_interval_and_timeout(eddy):
    from proxy_backend import Backend, TAKEN

    def handler(req, conn):
        time.sleep(3)
        return TAKEN

    with Backend(handler) as b:
        e = eddy(config(backend=b.port).replace(
            "max_frame_size: 32k}",
            "max_frame_size: 32k, ping_interval: 300ms, ping_timeout: 500ms}"),
            start=False)
        e.write_file("html/index.html", b"hi\n")
        e.start()
        raw = Raw(e.port)
        raw.send(raw.headers(1, raw.get_fields("/slow")))
        # Streams open, nothing received: a PING; unanswered: close.
        p = raw.until(lambda f: isinstance(f, hf.PingFrame)
                      and "ACK" not in f.flags, 3)
        assert p is not None
        t0 = time.monotonic()
        assert raw.wait_closed(3)
        assert time.monotonic() - t0 < 2
        assert "client timed out answering an HTTP/2 PING" in e.error_log


def test_bad_hpack_is_compression_error(srv):
    raw = Raw(srv.port)
    h = hf.HeadersFrame(1)
    h.data = b"\xff\xff\xff\xff\xff\xff"     # an index out of any table
    h.flags = set(["END_HEADERS", "END_STREAM"])
    raw.send(h)
    g = raw.goaway()
    assert g is not None and g.error_code == 9    # COMPRESSION_ERROR
    raw.close()


def test_client_body_timeout_408(eddy):
    from proxy_backend import Backend, response

    with Backend(lambda req, conn: response(200, b"x")) as b:
        e = eddy(config(backend=b.port).replace(
            "send_timeout: 1s", "send_timeout: 1s\n    client_body_timeout: 500ms"),
            start=False)
        e.write_file("html/index.html", b"hi\n")
        e.start()
        c = H2(e.port)
        sid = c.request("/slow", method="POST", end=False,
                        headers=[("content-length", "10")])
        c.send_data(sid, b"abc")
        st = c.wait(sid, 4)
        assert st.status == 408 or st.reset is not None, st
        c.close()


def test_client_reset_of_a_proxied_stream(eddy):
    """RST_STREAM while the upstream works: the request lets go (the
    upstream connection closes), the connection serves on."""
    from proxy_backend import Backend, TAKEN
    closed = []

    def handler(req, conn):
        conn.settimeout(5)
        try:
            closed.append(conn.recv(1) == b"")
        except OSError:
            closed.append(True)
        return TAKEN

    with Backend(handler) as b:
        e = eddy(config(backend=b.port), start=False)
        e.write_file("html/index.html", b"hi\n")
        e.start()
        c = H2(e.port)
        sid = c.request("/slow")
        b.wait_requests(1)
        c.reset(sid)
        st = c.get("/index.html")
        assert st.status == 200 and st.body == b"hi\n"
        from conftest import wait_for
        assert wait_for(lambda: closed, 5) and closed[0]
        c.close()
