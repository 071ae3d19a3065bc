"""The cache in operation (cache.md, Storage, restart and eviction; Serving
a hit): a binary upgrade, where both masters share the files, and an
entry removed (PURGE, eviction) while a slow client is still reading it."""

import glob
import hashlib
import os
import signal
import socket
import time

import pytest

from conftest import pid_alive, proc_children, wait_for
from proxy_backend import Backend, response

CONF = """
    workers: 2
    caches:
      main:
        path: {prefix}/cache/main
        %s
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main%s}
            headers: {set: {X-Cache: $upstream_cache_status, X-Pid: $pid}}
"""


def config(b, cache="max_size: 64m", proxy=""):
    return (CONF % (cache, proxy)).replace("@B@", str(b.port))


def entry_files(e):
    return sorted(glob.glob(os.path.join(str(e.prefix), "cache", "main",
                                         "*", "*", "*")))


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0].decode()
    except OSError:
        return ""


def by_path(req, conn):
    return response(200, ("body of %s" % req.path).encode(),
                    [("Cache-Control", "max-age=600")])


def hit(e, path):
    r = e.get(path)
    assert r.status == 200 and r.body == ("body of %s" % path).encode(), r
    assert r.header("X-Cache") == "HIT", r
    return int(r.header("X-Pid"))


# --------------------------------------------------------------------------
# binary upgrade


def test_binary_upgrade_shares_the_files(eddy):
    with Backend(by_path) as b:
        e = eddy(config(b))
        e.wait_workers(3)                     # two workers, the manager
        old_kids = set(proc_children(e.pid))
        for p in ("/a", "/b"):
            assert e.get(p).header("X-Cache") == "MISS"
        assert len(b.requests) == 2
        files = entry_files(e)
        assert len(files) == 2
        inodes = {f: os.stat(f).st_ino for f in files}
        pid_file = e.prefix / "logs" / "eddy.pid"
        oldbin = e.prefix / "logs" / "eddy.pid.oldbin"
        assert wait_for(pid_file.exists, 5)

        e.signal(signal.SIGUSR2)

        def new_master():
            if not oldbin.exists() or not pid_file.exists():
                return None
            pid = int(pid_file.read_text())
            return pid if pid != e.pid else None

        new_pid = wait_for(new_master, 10)
        assert new_pid, e.all_logs()
        e._seen_workers.add(new_pid)
        try:
            assert wait_for(lambda: len(proc_children(new_pid)) == 3, 10), \
                e.all_logs()
            new_kids = set(proc_children(new_pid))
            e._seen_workers.update(new_kids)
            # Both generations serve: every answer is a hit from the
            # files the old one stored, whichever worker takes it.
            seen = set()
            deadline = time.monotonic() + 10
            while not (seen & old_kids and seen & new_kids):
                assert time.monotonic() < deadline, (seen, old_kids,
                                                     new_kids)
                for p in ("/a", "/b"):
                    seen.add(hit(e, p))
            assert len(b.requests) == 2
            # The old workers leave (the old master stays): the new
            # generation alone serves the old files, stores a new fetch
            # and hits it.
            e.signal(signal.SIGWINCH)
            old_workers = [k for k in old_kids
                           if cmdline(k) != "eddy: cache manager"]
            assert len(old_workers) == 2
            assert wait_for(lambda: not any(pid_alive(k)
                                            for k in old_workers), 10)
            assert e.running()
            for p in ("/a", "/b"):
                assert hit(e, p) in new_kids
            r = e.get("/c")
            assert r.header("X-Cache") == "MISS"
            assert int(r.header("X-Pid")) in new_kids
            assert hit(e, "/c") in new_kids
            assert len(b.requests) == 3
            # The old master quits: its manager leaves the files alone.
            e.signal(signal.SIGQUIT)
            assert e.wait_exit(10) == 0, e.all_logs()
            assert not oldbin.exists()
            time.sleep(1.5)               # a pass of the new manager
            for p in ("/a", "/b", "/c"):
                assert hit(e, p) in new_kids
            assert len(b.requests) == 3
            assert len(entry_files(e)) == 3
            for f, ino in inodes.items():
                assert os.stat(f).st_ino == ino   # served, never rewritten
            assert "[alert]" not in e.all_logs()
        finally:
            if pid_alive(new_pid):
                os.kill(new_pid, signal.SIGQUIT)
                wait_for(lambda: not pid_alive(new_pid), 8)


def test_upgrade_files_stored_by_the_old_generation_are_counted(eddy):
    """A file the old generation stores after the new cache manager has
    loaded the directory is one the new index never walked: its first
    hit makes it known (size and all), so that `inactive` and `max_size`
    hold for it as for any other, and it is not left on disk for good."""
    with Backend(by_path) as b:
        e = eddy(config(b, "max_size: 64m\n        inactive: 3s"))
        e.wait_workers(3)
        old_kids = set(proc_children(e.pid))
        assert e.get("/a").header("X-Cache") == "MISS"
        pid_file = e.prefix / "logs" / "eddy.pid"
        oldbin = e.prefix / "logs" / "eddy.pid.oldbin"
        assert wait_for(pid_file.exists, 5)
        e.signal(signal.SIGUSR2)

        def new_master():
            if not oldbin.exists() or not pid_file.exists():
                return None
            pid = int(pid_file.read_text())
            return pid if pid != e.pid else None

        new_pid = wait_for(new_master, 10)
        assert new_pid, e.all_logs()
        e._seen_workers.add(new_pid)
        try:
            assert wait_for(lambda: len(proc_children(new_pid)) == 3, 10)
            e._seen_workers.update(proc_children(new_pid))
            # The new manager has walked the directory: one file.
            assert wait_for(lambda: e.all_logs().count(
                'cache "main": 1 files loaded') == 1, 10), e.all_logs()
            # An old worker stores a key now.
            late = None
            for i in range(200):
                r = e.get("/late%d" % i)
                assert r.header("X-Cache") == "MISS"
                if int(r.header("X-Pid")) in old_kids:
                    late = "/late%d" % i
                    break
            assert late, "no request reached an old worker"
            e.signal(signal.SIGQUIT)
            assert e.wait_exit(10) == 0, e.all_logs()
            n = len(b.requests)
            assert hit(e, late) not in old_kids
            assert len(b.requests) == n
            # Unused for inactive: every file goes, the late one too.
            assert wait_for(lambda: entry_files(e) == [], 10), \
                entry_files(e)
            assert e.get(late).header("X-Cache") == "MISS"
        finally:
            if pid_alive(new_pid):
                os.kill(new_pid, signal.SIGQUIT)
                wait_for(lambda: not pid_alive(new_pid), 8)


# --------------------------------------------------------------------------
# an entry removed while a slow client reads it

BIG = 6 << 20                               # bytes of a large entry
SLOW_CONF = """
    workers: 1
    %s
    caches:
      main:
        path: {prefix}/cache/main
        %s
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main, purge: true}
            headers: {set: {X-Cache: $upstream_cache_status}}
            access:
              - {allow: 127.0.0.1, methods: [PURGE]}
              - {deny: all, methods: [PURGE]}
"""


def versions():
    """An origin whose n-th answer for a path is a large body of its own
    (bytes differ everywhere); bodies[(path, n)] keeps them."""
    bodies = {}
    count = {}

    def handler(req, conn):
        n = count[req.path] = count.get(req.path, 0) + 1
        seed = hashlib.sha256(("%s %d" % (req.path, n)).encode()).digest()
        body = (seed * (BIG // len(seed) + 1))[:BIG]
        # A counter in every 4 KiB block: no two blocks are alike, so a
        # byte out of place or a repeated block shows.
        body = b"".join(b"%08d" % i + body[i * 4096 + 8:(i + 1) * 4096]
                        for i in range(BIG // 4096))
        bodies[(req.path, n)] = body
        return response(200, body, [("Cache-Control", "max-age=600")])

    return handler, bodies


class SlowClient:
    """A GET read a little at a time through a small receive window."""

    def __init__(self, port, path):
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.s.settimeout(10)
        self.s.connect(("127.0.0.1", port))
        self.s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Connection: close\r\n\r\n" % path.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.s.recv(1024)
            assert chunk, data
            data += chunk
        head, _, self.body = data.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.length = int(self.header("Content-Length"))

    def header(self, name):
        for line in self.head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == name.lower():
                return v.strip()
        return None

    def nibble(self, n=16384):
        want = len(self.body) + n
        while len(self.body) < want:
            chunk = self.s.recv(want - len(self.body))
            assert chunk, "cut off after %d bytes" % len(self.body)
            self.body += chunk
        time.sleep(0.05)

    def finish(self):
        while True:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                break
            self.body += chunk
        self.s.close()
        return self.body


def open_entry_fds(pid, files):
    """How many descriptors of process pid are on one of files (or on
    their unlinked inodes)."""
    names = set(files) | {f + " (deleted)" for f in files}
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in names:
                n += 1
        except OSError:
            pass
    return n


def purge(e, path):
    s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    s.sendall(b"PURGE %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Connection: close\r\n\r\n" % path.encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.split(b" ", 2)[1]


@pytest.mark.parametrize("how", ["purge", "evict", "inactive"])
@pytest.mark.parametrize("path", ["first-hit", "fast-path"])
def test_entry_removed_while_sent_is_finished(eddy, how, path):
    handler, bodies = versions()
    cache = "max_size: 64m\n        max_entry_size: 8m"
    if how == "evict":
        # Room for one large entry: storing another evicts the first.
        cache = "max_size: 10m\n        max_entry_size: 8m"
    elif how == "inactive":
        cache += "\n        inactive: 2s"
    main = "open_file_cache: {max: 100, valid: 30s}" \
        if path == "fast-path" else ""
    with Backend(handler) as b:
        e = eddy((SLOW_CONF % (main, cache)).replace("@B@", str(b.port)))
        (worker,) = [k for k in e.wait_workers(2)
                     if cmdline(k) != "eddy: cache manager"]
        r = e.get("/big", timeout=20)
        assert r.header("X-Cache") == "MISS" and r.body == bodies[("/big", 1)]
        (f,) = entry_files(e)
        if path == "fast-path":
            # A first hit checks the file; its descriptor stays in the
            # open-file cache and the next hit is served from it.
            r = e.get("/big", timeout=20)
            assert r.header("X-Cache") == "HIT"
            # (The fetch's own descriptor may take a moment to close.)
            assert wait_for(lambda: open_entry_fds(worker, [f]) == 1, 5)
        else:
            assert wait_for(lambda: open_entry_fds(worker, [f]) == 0, 5)

        c = SlowClient(e.port, "/big")
        assert c.head.startswith("HTTP/1.1 200"), c.head
        assert c.header("X-Cache") == "HIT" and c.length == BIG
        c.nibble()
        if how == "purge":
            assert purge(e, "/big") == b"200"
        elif how == "evict":
            r = e.get("/other", timeout=20)
            assert r.header("X-Cache") == "MISS"
        deadline = time.monotonic() + 10
        while os.path.exists(f):
            # The manager's pass (inactive): keep the client reading.
            assert time.monotonic() < deadline, "entry never removed"
            c.nibble(4096)
            time.sleep(0.2)
        # Gone from the directory, still being sent from the open file.
        assert len(c.body) < BIG // 2, len(c.body)
        assert open_entry_fds(worker, [f]) >= 1
        for _ in range(20):
            c.nibble()
        body = c.finish()
        assert len(body) == BIG
        assert hashlib.sha256(body).digest() == \
            hashlib.sha256(bodies[("/big", 1)]).digest()
        # The next request is a miss: the new version from the origin.
        r = e.get("/big", timeout=20)
        assert r.header("X-Cache") == "MISS"
        assert r.body == bodies[("/big", 2)]
        r = e.get("/big", timeout=20)
        assert r.header("X-Cache") == "HIT"
        assert r.body == bodies[("/big", 2)]
        assert "[alert]" not in e.all_logs()
        assert "[crit]" not in e.all_logs()
