import os, socket, time, threading, signal
from conftest import wait_for
from proxy_backend import Backend, response, TAKEN

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main, read_timeout: 3s, purge: true}
            headers: {set: {X-Cache: $upstream_cache_status}}
            access:
              - {allow: 127.0.0.1, methods: [PURGE]}
              - {deny: all, methods: [PURGE]}
"""

def test_purge(eddy):
    def h(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nCache-Control: max-age=60\r\n\r\n5\r\nhello\r\n")
        time.sleep(1.0)
        conn.sendall(b"5\r\nworld\r\n0\r\n\r\n")
        return TAKEN
    with Backend(h) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("a", e.raw(b"GET /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=5)))
        t.start(); time.sleep(0.3)
        t2 = threading.Thread(target=lambda: out.setdefault("w", e.raw(b"GET /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=5)))
        t2.start(); time.sleep(0.3)
        print("PURGE", e.raw(b"PURGE /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")[:60])
        t.join(); t2.join()
        print("A", out["a"][-60:])
        print("W", out["w"][-60:])
        r = e.get("/p"); print("AFTER", r.header("X-Cache"), r.body, len(b.requests))
        print(os.listdir(os.path.join(str(e.prefix), "cache", "main", ".tmp")))
    assert 0
