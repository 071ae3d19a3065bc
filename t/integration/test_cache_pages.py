"""How a stored body is written (cache.md: a hit costs what a static file
of the same size does). The body goes to the entry's file in pieces that
end at 256 KiB boundaries of the file, not one write per upstream read:
the page cache then holds it in large folios, as a file written in one
piece, which is what keeps a hit's sendfile as cheap as a static file's.
The copy of the body a 304 makes (the entry written anew) goes the same
way.
Bytes held back still reach the clients following the file at once (a
10 ms timer), so a pausing upstream delays nobody."""

import ctypes
import mmap
import os
import socket
import struct
import threading
import time

import pytest

from conftest import wait_for
from proxy_backend import Backend, TAKEN, response

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 1g}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""

PAGE = 4096


def folios(path):
    """(folios, pages) of path's page cache: /proc/self/pagemap gives
    each mapped page's frame, /proc/kpageflags whether it is the head
    (bit 15) or a tail (bit 16) of a compound page, i.e. a large folio."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        m = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE,
                      prot=mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    try:
        npages = -(-size // PAGE)
        for i in range(npages):
            m[i * PAGE]                       # mapped, not copied: read
        view = (ctypes.c_char * 1).from_buffer(m)
        base = ctypes.addressof(view) // PAGE
        del view
        heads = singles = 0
        with open("/proc/self/pagemap", "rb") as pm, \
                open("/proc/kpageflags", "rb") as kf:
            for i in range(npages):
                pm.seek((base + i) * 8)
                entry = struct.unpack("Q", pm.read(8))[0]
                pfn = entry & ((1 << 55) - 1)
                if not entry >> 63 or pfn == 0:
                    pytest.skip("page frames are not visible here")
                kf.seek(pfn * 8)
                flags = struct.unpack("Q", kf.read(8))[0]
                if flags >> 15 & 1:
                    heads += 1
                elif not flags >> 16 & 1:
                    singles += 1
        return heads + singles, npages
    finally:
        m.close()


def origin(body, first, pause):
    """Sends the head and body[:first], then after pause the rest; t is
    when the rest went."""
    t = {}

    def handler(req, conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                     b"Cache-Control: max-age=600\r\n\r\n" % len(body)
                     + body[:first])
        if pause:
            time.sleep(pause)
        t["rest"] = time.monotonic()
        conn.sendall(body[first:])
        return TAKEN

    return handler, t


def entry_file(e):
    found = []
    for d, dirs, files in os.walk(e.prefix / "cache" / "main"):
        if os.path.basename(d) == ".tmp":
            continue
        found += [os.path.join(d, f) for f in files
                  if len(f) == 32]
    return found[0] if len(found) == 1 else None


def test_stored_body_is_in_large_folios(eddy):
    if os.geteuid() != 0 or not os.access("/proc/kpageflags", os.R_OK):
        pytest.skip("needs /proc/kpageflags (root)")
    body = os.urandom(1 << 20)
    handler, _ = origin(body, len(body), 0)
    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        # The yardstick: a file of the same size written in one piece,
        # on the same filesystem. Without large folios there (kernel,
        # filesystem, memory), there is nothing to compare with.
        control = e.prefix / "control.bin"
        control.write_bytes(body)
        n, pages = folios(control)
        if n > pages // 8:
            pytest.skip("no large folios on this filesystem (%d for %d "
                        "pages)" % (n, pages))
        r = e.get("/big", timeout=20)
        assert r.status == 200 and r.body == body
        path = wait_for(lambda: entry_file(e), timeout=10)
        assert path
        with open(path, "rb") as f:
            data = f.read()
        assert data.endswith(body)
        assert e.get("/big").header("X-Cache") == "HIT"
        n, pages = folios(path)
        # One write per upstream read (16 KiB, unaligned) left every
        # page a folio of its own: 257 for this file.
        assert n <= pages // 8, (n, pages)


def test_body_copied_by_a_304_is_in_large_folios(eddy):
    if os.geteuid() != 0 or not os.access("/proc/kpageflags", os.R_OK):
        pytest.skip("needs /proc/kpageflags (root)")
    body = os.urandom(1 << 20)

    def handler(req, conn):
        if req.header("If-None-Match"):
            return response(304, b"", [("ETag", '"v"'),
                                       ("Cache-Control", "max-age=600"),
                                       ("X-Updated", "yes")], length=False)
        return response(200, body, [("ETag", '"v"'),
                                    ("Cache-Control", "max-age=1")])

    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        control = e.prefix / "control.bin"
        control.write_bytes(body)
        n, pages = folios(control)
        if n > pages // 8:
            pytest.skip("no large folios on this filesystem (%d for %d "
                        "pages)" % (n, pages))
        assert e.get("/u", timeout=20).body == body
        path = wait_for(lambda: entry_file(e), timeout=10)
        ino = os.stat(path).st_ino
        time.sleep(1.5)
        r = e.get("/u", timeout=20)
        assert r.header("X-Cache") == "REVALIDATED" and r.body == body
        assert wait_for(lambda: os.stat(path).st_ino != ino)
        r = e.get("/u")
        assert r.header("X-Cache") == "HIT" and r.body == body
        assert r.header("X-Updated") == "yes"
        n, pages = folios(path)
        # copy_file_range's in-kernel copy left about a third of the
        # pages folios of their own.
        assert n <= pages // 8, (n, pages)


def test_small_entry_written_whole(eddy):
    # A body shorter than a piece is held until it is complete: the
    # entry is still whole, and nothing is left out at its end.
    body = b"0123456789" * 1000
    handler, _ = origin(body, 5000, 0)
    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        r = e.get("/small")
        assert r.status == 200 and r.body == body
        assert wait_for(lambda: e.get("/small").header("X-Cache") == "HIT")
        path = entry_file(e)
        assert path and open(path, "rb").read().endswith(body)
        assert len(b.requests) == 1


def test_bytes_held_back_reach_the_client_while_the_upstream_pauses(eddy):
    # 400,000 bytes: a piece ends at 262,144 in the file, the rest of
    # them is held back; they must all reach the client (who follows the
    # file) long before the upstream sends the rest.
    first = 400000
    body = os.urandom(first + 100000)
    handler, t = origin(body, first, 2.0)
    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        s = socket.create_connection(("127.0.0.1", e.port), timeout=10)
        s.sendall(b"GET /pause HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Connection: close\r\n\r\n")
        got = bytearray()
        when = {}
        done = threading.Event()

        def reader():
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got.extend(chunk)
                head, sep, rest = bytes(got).partition(b"\r\n\r\n")
                if sep and len(rest) >= first and "first" not in when:
                    when["first"] = time.monotonic()
            done.set()

        th = threading.Thread(target=reader)
        th.start()
        assert done.wait(20)
        th.join(5)
        s.close()
        head, _, rest = bytes(got).partition(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0]
        assert rest == body
        assert when["first"] < t["rest"], (when, t)
