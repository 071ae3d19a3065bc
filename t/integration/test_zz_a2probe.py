import os, socket, time, threading, signal
from conftest import wait_for
from proxy_backend import Backend, response, TAKEN
from h2util import H2

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m}
    servers:
      - listen: [{address: "127.0.0.1:{port}", http2: true}]
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main, read_timeout: 2s}
"""

def mk(kind):
    def h(req, conn):
        if kind == "cl":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nCache-Control: max-age=60\r\n\r\n" + b"x" * 5000)
            time.sleep(0.3); return "close"
        if kind == "clpriv":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nCache-Control: private\r\n\r\n" + b"x" * 5000)
            time.sleep(0.3); return "close"
        if kind == "chunkbad":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n\r\n10\r\n" + b"x"*16 + b"\r\nZZ\r\n")
            time.sleep(0.3); return "close"
        if kind == "chunkclose":
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\n\r\n10\r\n" + b"x"*16 + b"\r\n")
            time.sleep(0.3); return "close"
        if kind == "closedelim":
            conn.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n\r\n" + b"x"*5000)
            time.sleep(0.3); return "close"
    return h

import pytest
@pytest.mark.parametrize("kind", ["cl", "clpriv", "chunkbad", "chunkclose", "closedelim"])
def test_trunc(eddy, kind):
    with Backend(mk(kind)) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        c = H2(e.port)
        sid = c.request("/t")
        r = c.wait(sid, timeout=8)
        print("H2", kind, r.status, len(r.body), r.reset, r.headers)
        c.close()
        out = e.raw(b"GET /t2 HTTP/1.1\r\nHost: a\r\n\r\n", timeout=5)
        print("H1", kind, out[:300], len(out), out[-20:])
    assert 0
