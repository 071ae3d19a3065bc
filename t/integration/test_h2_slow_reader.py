"""HTTP/2 streams ended while the socket is full (spec/http2.md, floods):
a client that reads slowly, its queue over the high water mark, trips a
flood; every stream is cancelled while its file ranges still wait in
the connection's queue or its next DATA frame waits for room.

- a stream whose response was all queued (waiting for its file ranges
  to be written) and that is cancelled then is freed once, when the
  socket is past its ranges: the worker survives (it used to free the
  stream twice and crash);
- a DATA frame nghttp2 had made before the stream was cancelled, whose
  bytes were dropped with the stream's output, is not written as a bare
  frame header: the bytes that follow still parse as frames;
- PINGs paced under the control budget while the client reads nothing
  fill nghttp2's own queue of ACKs: the same flood reaction (GOAWAY
  ENHANCE_YOUR_CALM, the warn line), not a silent close.

The client's small receive buffer and segment size keep the kernel's
share of the response near 100 KiB, so that the client's flow-control
windows decide where each stream's bytes sit in eddy's queue."""

import os
import socket
import time

import hpack
import pytest

from conftest import wait_for
from h2util import H2, hf

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    names: [slow.test]
    root: html
    send_timeout: 5s
    locations:
      /:
        static: {}
"""

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PING = hf.PingFrame(0, opaque_data=b"12345678").serialize()


@pytest.fixture
def srv(eddy):
    e = eddy(CONFIG, start=False)
    e.write_file("html/big.bin", os.urandom(1024 * 1024))
    # Over the static module's inline size: sent as a file range.
    e.write_file("html/small.bin", os.urandom(20000))
    return e.start()


def slow_client(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def get(enc, sid, path):
    f = hf.HeadersFrame(sid)
    f.data = enc.encode([(":method", "GET"), (":scheme", "http"),
                         (":path", path), (":authority", "slow.test")])
    f.flags = {"END_STREAM", "END_HEADERS"}
    return f.serialize()


def read_slowly(s, deadline=8.0):
    """Reads to EOF in small steps: the socket takes eddy's queue in
    several writes, not one."""
    data = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        except OSError:
            break
        if not d:
            break
        data += d
        time.sleep(0.005)
    return data


def frames(data):
    """(type, stream, length, flags) of each frame; a frame whose header
    promises more than follows ends the list with type None."""
    out, off = [], 0
    while off + 9 <= len(data):
        f, length = hf.Frame.parse_frame_header(data[off:off + 9])
        out.append((f.type, f.stream_id, length, set(f.flags)))
        off += 9 + length
    return out


def run(srv):
    """Stream 1 fills its first window (the kernel's share and some of
    eddy's queue); stream 3's file ranges queue behind, beyond what the
    kernel took; stream 1 then fills the queue past them, its next DATA
    frame waiting for room; a PING flood cancels both. Then the client
    reads everything, slowly. Returns the worker's pid and the bytes."""
    pid = srv.worker_pids()
    enc = hpack.Encoder()
    s = slow_client(srv.port)
    s.sendall(PREFACE
              + hf.SettingsFrame(0, settings={4: 130000}).serialize()
              + hf.SettingsFrame(0, flags=["ACK"]).serialize()
              + hf.WindowUpdateFrame(
                  0, window_increment=2 ** 31 - 1 - 65535).serialize())
    s.sendall(get(enc, 1, "/big.bin"))
    time.sleep(0.3)
    s.sendall(get(enc, 3, "/small.bin"))
    time.sleep(0.3)
    s.sendall(hf.WindowUpdateFrame(1, window_increment=500000).serialize())
    time.sleep(0.3)
    s.sendall(PING * 1100)
    time.sleep(0.3)
    data = read_slowly(s)
    s.close()
    assert wait_for(lambda: 'http2 flood "control"' in srv.error_log, 3)
    return pid, data


def test_reset_stream_waiting_for_its_ranges_is_freed_once(srv):
    for _ in range(3):
        pid, data = run(srv)
        if srv.worker_pids() != pid:
            break
    # A stream freed twice would be handed out twice: streams of the
    # next connections would share it.
    small = (srv.prefix / "html/small.bin").read_bytes()
    for _ in range(3):
        c = H2(srv.port)
        sids = [c.request("/small.bin", authority="slow.test")
                for _ in range(4)]
        for sid in sids:
            st = c.wait(sid)
            assert st.status == 200 and st.body == small, st
        c.close()
    time.sleep(0.3)
    assert "killed by signal" not in srv.error_log
    assert srv.worker_pids() == pid


def test_data_frame_made_before_the_reset_is_not_cut(srv):
    pid, data = run(srv)
    fs = frames(data)
    kinds = {hf.DataFrame.type, hf.HeadersFrame.type, hf.SettingsFrame.type,
             hf.WindowUpdateFrame.type, hf.PingFrame.type,
             hf.GoAwayFrame.type, hf.RstStreamFrame.type}
    bad = [f for f in fs if f[0] not in kinds or f[1] not in (0, 1, 3)]
    assert not bad, "garbage after %d frames: %s" % (fs.index(bad[0]),
                                                    bad[0])
    # Stream 3 was all queued before the flood: it arrives whole.
    assert sum(f[2] for f in fs if f[0] == 0 and f[1] == 3) == 20000
    assert any(f[0] == 0 and f[1] == 3 and "END_STREAM" in f[3]
               for f in fs)


def goaway_codes(data):
    """The error codes of the GOAWAY frames in data."""
    out, off = [], 0
    while off + 9 <= len(data):
        f, length = hf.Frame.parse_frame_header(data[off:off + 9])
        if f.type == hf.GoAwayFrame.type and off + 9 + length <= len(data):
            out.append(int.from_bytes(data[off + 13:off + 17], "big"))
        off += 9 + length
    return out


def test_acks_piling_up_unread_are_a_flood(srv):
    enc = hpack.Encoder()
    s = slow_client(srv.port)
    s.sendall(PREFACE
              + hf.SettingsFrame(0, settings={4: 2 ** 31 - 1}).serialize()
              + hf.SettingsFrame(0, flags=["ACK"]).serialize()
              + hf.WindowUpdateFrame(
                  0, window_increment=2 ** 31 - 1 - 65535).serialize())
    s.sendall(get(enc, 1, "/big.bin"))
    time.sleep(0.3)
    # 1100 PINGs in 2.75 s: under the budget (1000, then 100 a second),
    # over the 1000 ACKs nghttp2 queues, eddy's queue being full.
    for _ in range(110):
        s.sendall(PING * 10)
        time.sleep(0.025)
    data = read_slowly(s)
    s.close()
    assert goaway_codes(data) == [11]   # ENHANCE_YOUR_CALM
    assert wait_for(lambda: 'http2 flood "control"' in srv.error_log, 3)
