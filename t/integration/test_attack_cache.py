"""Attacks on the cache of proxied responses (cache.md): what a client
can make the cache store for other clients, and what a bad file or a bad
upstream body can do. Each origin counts its requests."""

import glob
import os
import socket

import pytest

from proxy_backend import Backend, response
from tlsutil import pki  # noqa: F401 (a fixture)

CONF = """
    workers: 1
    caches:
      main:
        path: {prefix}/cache/main
        max_size: 64m
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main%s}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""


def start(eddy, b, proxy=""):
    return eddy((CONF % proxy).replace("@B@", str(b.port)))


def get(e, path, *fields):
    head = "GET %s HTTP/1.1\r\n" % path
    if not any(f.lower().startswith("host:") for f in fields):
        head += "Host: a.example\r\n"
    for f in fields:
        head += f + "\r\n"
    out = e.raw((head + "Connection: close\r\n\r\n").encode(), timeout=2.0)
    head, _, body = out.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def coded(req, conn):
    """Picks a coding from the raw Accept-Encoding, as origins do."""
    ae = req.header("Accept-Encoding") or ""
    hdrs = [("Vary", "Accept-Encoding"), ("Cache-Control", "max-age=60")]
    if "deflate" in ae and "deflate;q=0" not in ae:
        return response(200, b"DEFLATED", hdrs
                        + [("Content-Encoding", "deflate")])
    if "gzip" in ae and "gzip;q=0" not in ae:
        return response(200, b"GZIPPED", hdrs + [("Content-Encoding", "gzip")])
    if not ae:
        # RFC 9110 12.5.3: no field, any coding is acceptable.
        return response(200, b"BROTLI", hdrs + [("Content-Encoding", "br")])
    return response(200, b"PLAIN", hdrs)


def test_accept_encoding_outside_the_keyed_subset_not_stored(eddy):
    # The variant keys the accepted subset of br, gzip, zstd; a coding
    # the origin picked from the rest of the field must not reach
    # clients that never accepted it.
    with Backend(coded) as b:
        e = start(eddy, b)
        head, body = get(e, "/d", "Accept-Encoding: gzip;q=0, deflate")
        assert body == b"DEFLATED"
        assert "detail=vary" in head
        head, body = get(e, "/d", "Accept-Encoding: identity")
        assert body == b"PLAIN", (head, body)
        assert "Content-Encoding" not in head
        # No field at all: the origin may pick any coding; an identity
        # client must still get identity.
        head, body = get(e, "/n")
        assert body == b"BROTLI"
        head, body = get(e, "/n", "Accept-Encoding: identity")
        assert body == b"PLAIN", (head, body)
        # A coding inside the subset is stored and hit as before.
        head, body = get(e, "/g", "Accept-Encoding: gzip, deflate;q=0")
        assert body == b"GZIPPED" and "stored" in head
        head, body = get(e, "/g", "Accept-Encoding: gzip")
        assert body == b"GZIPPED" and "X-Cache: HIT" in head
        n = len(b.requests)
        head, body = get(e, "/d", "Accept-Encoding: identity")
        assert body == b"PLAIN" and "X-Cache: HIT" in head
        assert len(b.requests) == n


def reflect_host(req, conn):
    """A redirect built from the Host, as many origins do."""
    return response(301, b"", [
        ("Location", "http://%s/login" % req.header("Host")),
        ("X-Fwd-Host", req.header("X-Forwarded-Host") or "-"),
        ("Cache-Control", "max-age=60")])


def test_host_port_and_trailing_dot_are_not_unkeyed(eddy):
    # $host drops the port and trailing dots; the origin must not see
    # what the key dropped, or one client stores a redirect to its own
    # port under everybody's key.
    with Backend(reflect_host) as b:
        e = start(eddy, b, ", forwarded: true")
        head, _ = get(e, "/p", "Host: A.Example:6666")
        assert "Location: http://a.example/login" in head, head
        assert "X-Fwd-Host: a.example\r\n" in head, head
        head, _ = get(e, "/p")
        assert "X-Cache: HIT" in head
        assert "Location: http://a.example/login" in head, head
        head, _ = get(e, "/d", "Host: a.example.")
        assert "Location: http://a.example/login" in head, head
        assert b.requests[0].header("Host") == "a.example"
        assert b.requests[1].header("Host") == "a.example"
        # Absolute form: the target's authority is the Host, as keyed.
        head, _ = get(e, "http://b.example:7/q", "Host: evil.example")
        assert "Location: http://b.example/login" in head, head
        head, _ = get(e, "/q", "Host: b.example")
        assert "X-Cache: HIT" in head
        assert "Location: http://b.example/login" in head, head
        assert len(b.requests) == 3


def test_uncached_location_keeps_the_client_host(eddy):
    with Backend(reflect_host) as b:
        e = start(eddy, b, ", cache_methods: [GET]")
        e.raw(b"HEAD /u HTTP/1.1\r\nHost: a.example:6666\r\n"
              b"Connection: close\r\n\r\n")
        assert b.requests[0].header("Host") == "a.example:6666"


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_lock_of_a_killed_worker_is_not_waited_for(eddy):
    # The worker holding a key's fill dies (SIGKILL): its lock in the
    # shared zone must not make the next requests wait (or spin) until
    # cache_lock.timeout.
    import signal
    import socket
    import time
    from conftest import proc_children, wait_for
    from proxy_backend import TAKEN

    def handler(req, conn):
        if len(b.requests) == 1:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                         b"Cache-Control: max-age=600\r\n\r\n" + b"s" * 50)
            time.sleep(5)
            return TAKEN
        return response(200, b"whole", [("Cache-Control", "max-age=600")])

    with Backend(handler) as b:
        e = start(eddy, b, ", cache_lock: {timeout: 20s}")
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        s.sendall(b"GET /k HTTP/1.1\r\nHost: a.example\r\n\r\n")
        assert wait_for(lambda: os.listdir(tmp), 5)
        pid = int(os.listdir(tmp)[0].split(".")[0])
        os.kill(pid, signal.SIGKILL)
        s.close()
        # The master respawns the worker; the cache manager removes the
        # dead worker's temp file.
        assert wait_for(lambda: os.listdir(tmp) == [], 10)
        assert wait_for(lambda: [p for p in e.worker_pids() if p != pid
                                 and cpu_ticks(p) >= 0], 5)
        worker = [p for p in e.worker_pids() if p != pid]
        ticks = [cpu_ticks(p) for p in worker]
        t0 = time.monotonic()
        head, body = get(e, "/k")
        used = sum(cpu_ticks(p) for p in worker) - sum(ticks)
        assert time.monotonic() - t0 < 3, head
        assert used < 20, used    # no spinning meanwhile
        assert body == b"whole", (head, body)
        assert "stored" in head, head
        assert len(b.requests) == 2


TLS_CONF = """
    workers: 1
    caches:
      main:
        path: {prefix}/cache/main
        max_size: 64m
    servers:
      - listen: 127.0.0.1:{port0}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
      - listen: 127.0.0.1:{port1}
        tls: {certificate: certs/default.pem, key: certs/default.key}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""


def test_scheme_and_host_do_not_run_together_in_the_key(eddy, pki):
    # "http" + "sbank.example" is "https" + "bank.example": without a
    # separator a plain request for host sbank.example stored what the
    # TLS clients of bank.example were then served.
    import ssl
    from h2util import tls_context

    def handler(req, conn):
        return response(200, ("for %s\n" % req.header("Host")).encode(),
                        [("Cache-Control", "max-age=60")])

    with Backend(handler) as b:
        e = eddy(TLS_CONF.replace("@B@", str(b.port)), ports=2, start=False)
        e.write_file("certs/default.pem",
                     (pki.root / "default.pem").read_bytes())
        e.write_file("certs/default.key",
                     (pki.root / "default.key").read_bytes())
        e.start()
        out = e.raw(b"GET /x HTTP/1.1\r\nHost: sbank.example\r\n"
                    b"Connection: close\r\n\r\n", port=e.ports[0])
        assert out.endswith(b"for sbank.example\n")
        s = tls_context(alpn=None).wrap_socket(
            socket.create_connection(("127.0.0.1", e.ports[1]), timeout=5),
            server_hostname="bank.example")
        s.sendall(b"GET /x HTTP/1.1\r\nHost: bank.example\r\n"
                  b"Connection: close\r\n\r\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        assert out.endswith(b"for bank.example\n"), out
        assert b"X-Cache: MISS" in out


def crc32c(data):
    crc = 0xffffffff
    for x in data:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff


def test_entry_whose_head_does_not_parse_is_a_miss(eddy):
    # The header's CRC is right (the file was edited with care, or
    # written by another build): the stored head is still untrusted
    # input. Not a 502 on every hit: a miss, the file removed.
    import struct

    with Backend(lambda req, conn: response(
            200, b"body", [("Cache-Control", "max-age=600")])) as b:
        e = start(eddy, b)
        head, _ = get(e, "/h")
        assert "stored" in head
        (path,) = glob.glob(os.path.join(str(e.prefix), "cache", "main",
                                         "*", "*", "*"))
        data = bytearray(open(path, "rb").read())
        head_off = struct.unpack_from("<I", data, 88)[0]
        body_off = struct.unpack_from("<Q", data, 104)[0]
        assert data[head_off:head_off + 5] == b"HTTP/"
        data[head_off:head_off + 5] = b"XTTP/"
        struct.pack_into("<I", data, 12, 0)
        struct.pack_into("<I", data, 12, crc32c(bytes(data[:body_off])))
        open(path, "wb").write(bytes(data))
        head, body = get(e, "/h")
        assert head.startswith("HTTP/1.1 200 "), head
        assert body == b"body" and "X-Cache: MISS" in head, head
        assert len(b.requests) == 2
        assert e.all_logs().count("invalid file") == 1
        head, body = get(e, "/h")
        assert "X-Cache: HIT" in head and body == b"body"


def test_a_client_cannot_turn_off_collapsing_for_a_key(eddy):
    # A response not stored because of the request (its Authorization,
    # a coding its Accept-Encoding picked) says nothing of the key: it
    # must not make the key hit-for-miss, or one request with
    # Authorization every 30 s sends every cold miss of the key to the
    # origin at once.
    import threading
    import time

    def handler(req, conn):
        time.sleep(0.5)
        hdrs = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")]
        if "deflate" in (req.header("Accept-Encoding") or ""):
            return response(200, b"deflated", hdrs
                            + [("Content-Encoding", "deflate")])
        return response(200, b"shared", hdrs)

    with Backend(handler) as b:
        e = start(eddy, b)
        for i, field in enumerate(("Authorization: Basic eDp5",
                                   "Accept-Encoding: deflate")):
            path = "/c%d" % i
            head, _ = get(e, path, field)
            assert "detail=" in head and "stored" not in head, head
            n = len(b.requests)
            out = []
            ts = [threading.Thread(target=lambda: out.append(get(e, path)))
                  for _ in range(5)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            assert all(body == b"shared" for _, body in out)
            assert len(b.requests) - n == 1, len(b.requests) - n


def test_min_free_eviction_with_only_fills_in_flight(eddy):
    # Below min_free the cache manager evicts a quota of entries; an
    # index holding only fetches in flight (no file to evict yet) must
    # not keep it walking forever under the zone's lock, which would
    # hang every worker's lookup.
    import threading
    import time

    def handler(req, conn):
        if req.target == "/slow":
            time.sleep(4)
        return response(200, b"ok " + req.target.encode(),
                        [("Cache-Control", "max-age=60")])

    with Backend(handler) as b:
        e = eddy((CONF % "").replace("@B@", str(b.port)).replace(
            "max_size: 64m", "max_size: 64m\n        min_free: 100000g"))
        t = threading.Thread(target=lambda: get(e, "/slow"))
        t.start()
        assert b.wait_requests(1)
        time.sleep(2.5)     # the cache manager's passes meanwhile
        t0 = time.monotonic()
        head, body = get(e, "/other")
        assert body == b"ok /other", head
        assert time.monotonic() - t0 < 1.5
        t.join()


def test_waiters_of_a_fill_past_max_entry_size_get_the_whole_body(eddy):
    # A chunked response grows past max_entry_size while collapsed
    # waiters stream it from the temp file: the fill stops and removes
    # the file, and every waiter is cut off although the origin's
    # response was whole. Only the fetching client gets it all.
    import threading
    import time
    from proxy_backend import TAKEN

    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n200\r\n"
                     + b"a" * 512 + b"\r\n")
        time.sleep(0.8)
        conn.sendall(b"400\r\n" + b"b" * 1024 + b"\r\n0\r\n\r\n")
        return TAKEN

    with Backend(handler) as b:
        e = eddy((CONF % "").replace("@B@", str(b.port)).replace(
            "max_size: 64m", "max_size: 64m\n        max_entry_size: 1k"))
        out = []
        ts = [threading.Thread(target=lambda: out.append(get(e, "/big")))
              for _ in range(3)]
        for t in ts:
            t.start()
            time.sleep(0.2)
        for t in ts:
            t.join()
        for head, body in out:
            assert body.endswith(b"0\r\n\r\n"), (head, len(body))
