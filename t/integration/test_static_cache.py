"""The open-file cache of the static module (`open_file_cache`): files
replaced, rewritten, removed or created on disk are noticed within
`valid`; eviction of the least recently used entries past `max`; no
descriptor leaks when clients go away mid-file; send_timeout for clients
that stop reading."""

import os
import socket
import time

import pytest

from conftest import split_response, wait_for

CONFIG = r"""
workers: 1
error_log: logs/error.log
open_file_cache: {max: 5, valid: 1s}
servers:
  - listen: 127.0.0.1:{port}
    root: html
    send_timeout: 1s
    locations:
      /:
        static: {}
"""


def get(e, path):
    raw, closed = e.raw_ex(b"GET " + path.encode() + b" HTTP/1.1\r\n"
                           b"Host: a\r\nConnection: close\r\n\r\n",
                           timeout=10)
    assert closed
    return split_response(raw)


def replace(path, data):
    """Atomically replace path (a new inode), as deploy tools do."""
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, str(path))


def body_becomes(e, path, want, timeout=4.0):
    return wait_for(lambda: get(e, path)[2] == want, timeout=timeout,
                    interval=0.1)


@pytest.fixture
def srv(eddy):
    e = eddy(CONFIG, start=False)
    e.write_file("html/small.txt", "version 1\n")
    e.write_file("html/big.bin", b"A" * (2 << 20))
    return e.start()


def test_replaced_file_is_noticed(srv):
    path = srv.prefix / "html/small.txt"
    assert get(srv, "/small.txt")[2] == b"version 1\n"
    tag1 = get(srv, "/small.txt")[1]["etag"][0]
    replace(path, b"version two!\n")
    t0 = time.monotonic()
    assert body_becomes(srv, "/small.txt", b"version two!\n")
    assert time.monotonic() - t0 < 3.0
    status, h, body = get(srv, "/small.txt")
    assert h["content-length"] == ["13"]
    assert h["etag"][0] != tag1


def test_rewritten_in_place_is_noticed(srv):
    path = srv.prefix / "html/small.txt"
    assert get(srv, "/small.txt")[2] == b"version 1\n"
    with open(str(path), "r+b") as f:       # same inode, same size
        f.write(b"version 2\n")
    st = os.stat(str(path))
    os.utime(str(path), (st.st_atime, st.st_mtime + 5))
    assert body_becomes(srv, "/small.txt", b"version 2\n")


def test_large_file_replaced(srv):
    path = srv.prefix / "html/big.bin"
    assert get(srv, "/big.bin")[2] == b"A" * (2 << 20)
    replace(path, b"B" * (3 << 20))
    assert body_becomes(srv, "/big.bin", b"B" * (3 << 20))


def test_removed_and_created(srv):
    assert get(srv, "/small.txt")[0] == 200
    os.unlink(str(srv.prefix / "html/small.txt"))
    assert wait_for(lambda: get(srv, "/small.txt")[0] == 404, timeout=4)
    # Misses are not cached: a new file is served at once.
    assert get(srv, "/new.txt")[0] == 404
    srv.write_file("html/new.txt", "new\n")
    assert get(srv, "/new.txt")[2] == b"new\n"


def test_in_flight_download_keeps_old_bytes(srv):
    """A response in progress goes on from the descriptor it started
    with: replacing the file does not mix versions."""
    srv.write_file("html/big.bin", b"A" * (32 << 20))
    s = srv.connect()
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n"
                  b"Connection: close\r\n\r\n")
        first = s.recv(4096)
        # More than the socket buffers hold is still to be sent.
        replace(srv.prefix / "html/big.bin", b"C" * (2 << 20))
        time.sleep(1.2)
        data = first
        s.settimeout(10)
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            data += b
    finally:
        s.close()
    status, h, body = split_response(data)
    assert status == 200
    assert len(body) == 32 << 20
    assert body == b"A" * (32 << 20)
    assert body_becomes(srv, "/big.bin", b"C" * (2 << 20))


EVICT_CONFIG = r"""
workers: 1
error_log: logs/error.log
open_file_cache: {max: 5, valid: 1h}
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        static: {}
"""


def html_fds(pid, html):
    """Descriptors of pid open on files under html."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue        # closed meanwhile
        if target.startswith(html + "/"):
            n += 1
    return n


def test_eviction(eddy):
    """More files than max: the cache keeps the max most recently used
    entries and closes the others. Files over the inline size hold a
    descriptor each, so the worker has exactly max of them open; with
    valid: 1h an entry is never re-checked, so a file replaced on disk is
    seen at once only when its entry was evicted, and the old bytes are
    served while it is kept."""
    e = eddy(EVICT_CONFIG, start=False)
    size = 64 << 10         # over the 16 KiB held in memory: an fd each

    def content(i, gen):
        return (b"%s%d-" % (gen, i)) * (size // 8)

    for i in range(12):
        e.write_file("html/f%d.bin" % i, content(i, b"old"))
    e.start()
    (worker,) = e.wait_workers(1)
    html = os.path.realpath(str(e.prefix / "html"))

    def body(i):
        return get(e, "/f%d.bin" % i)[2]

    for i in range(12):
        assert body(i) == content(i, b"old")
    # Every response is over: only the cache holds descriptors, five.
    assert wait_for(lambda: html_fds(worker, html) == 5, timeout=5), \
        html_fds(worker, html)
    # LRU order now (oldest first): f7 f8 f9 f10 f11.
    for i in (0, 7, 8):
        replace(e.prefix / ("html/f%d.bin" % i), content(i, b"new"))
    # f7 is cached: its old bytes; now the most recently used.
    assert body(7) == content(7, b"old")
    # f0 was evicted long ago: opened afresh; f8 goes out for it.
    assert body(0) == content(0, b"new")
    # f8 was the least recently used (f7, older in the cache, was used
    # since): evicted, opened afresh; f9 goes out for it.
    assert body(8) == content(8, b"new")
    # f7 stayed, f10 and f11 too.
    assert body(7) == content(7, b"old")
    assert body(11) == content(11, b"old")
    assert wait_for(lambda: html_fds(worker, html) == 5, timeout=5), \
        html_fds(worker, html)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_no_fd_leak_on_aborted_downloads(eddy):
    e = eddy("""
        workers: 1
        open_file_cache: off
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """, start=False)
    e.write_file("html/big.bin", os.urandom(4 << 20))
    e.start()
    (worker,) = e.wait_workers(1)
    assert len(get(e, "/big.bin")[2]) == 4 << 20
    before = fd_count(worker)
    for _ in range(20):
        s = e.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        s.recv(1000)
        # Reset, not a clean close: the write fails at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert wait_for(lambda: fd_count(worker) <= before, timeout=5), \
        (before, fd_count(worker))
    assert len(get(e, "/big.bin")[2]) == 4 << 20


def test_send_timeout_drops_stalled_client(srv):
    """A client that stops reading a file response is dropped after
    send_timeout (1s here) without progress."""
    srv.write_file("html/huge.bin", b"H" * (64 << 20))
    s = srv.connect()
    try:
        s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(3)
        got, closed = 0, False
        s.settimeout(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                b = s.recv(1 << 20)
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break
            if not b:
                closed = True
                break
            got += len(b)
    finally:
        s.close()
    assert closed
    assert got < 64 << 20
    assert get(srv, "/small.txt")[0] == 200


def test_cache_off(eddy):
    e = eddy("""
        workers: 1
        open_file_cache: off
        servers:
          - listen: 127.0.0.1:{port}
            root: html
    """, start=False)
    e.write_file("html/a.txt", "one\n")
    e.start()
    assert get(e, "/a.txt")[2] == b"one\n"
    replace(e.prefix / "html/a.txt", b"two\n")
    assert get(e, "/a.txt")[2] == b"two\n"
