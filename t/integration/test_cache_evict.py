"""Eviction when a worker asks (cache.md, Storage, restart and
eviction): a write that fails for want of room makes the cache manager
evict least recently used entries at once, not at its next round, and
storing goes on."""

import glob
import os
import time

import pytest

from proxy_backend import Backend, response

CONF = """
    workers: 1
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""


def entries(path):
    return glob.glob(os.path.join(path, "*", "*", "*"))


def test_full_disk_makes_the_manager_evict_at_once(eddy):
    body = b"e" * 6000
    with Backend(lambda req, conn: response(
            200, body, [("Cache-Control", "max-age=600")])) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        path = os.path.join(str(e.prefix), "cache", "main")
        # A file system of 48k for the whole cache: entries of 8k each.
        if os.system("mount -t tmpfs -o size=48k,mode=0700 tmpfs %s "
                     "2>/dev/null" % path) != 0:
            pytest.skip("cannot mount a tmpfs here")
        try:
            os.mkdir(os.path.join(path, ".tmp"))
            # Let the manager's one-second round pass after the mount.
            time.sleep(1.2)
            stored = 0
            for i in range(12):
                full = len(entries(path))
                assert full == stored
                r = e.get("/f%d" % i)
                t = time.monotonic()
                assert r.status == 200 and r.body == body
                cs = r.header("Cache-Status")
                if cs.endswith("detail=no-space"):
                    break
                assert cs.endswith("stored"), cs
                stored += 1
            else:
                pytest.fail("the disk never filled up")
            assert stored >= 2
            while len(entries(path)) >= full and time.monotonic() - t < 3:
                time.sleep(0.02)
            took = time.monotonic() - t
            # Well within the manager's one-second round: it was woken.
            assert len(entries(path)) < full and took < 0.4, took
            # Room again: the next response is stored.
            assert e.get("/new").header("Cache-Status").endswith("stored")
            assert e.get("/new").header("X-Cache") == "HIT"
        finally:
            try:
                e.stop()
            finally:
                os.system("umount %s 2>/dev/null || umount -l %s"
                          % (path, path))


def test_a_disk_that_stays_full_costs_one_batch_a_second(eddy):
    # The disk is full for good (here: responses too big for it): each
    # failed write asks, but the manager takes one batch of entries a
    # second at most, not a batch per failed write.
    small = b"s" * 6000
    big = b"B" * (2 << 20)

    def handler(req, conn):
        body = big if req.target.startswith("/big") else small
        return response(200, body, [("Cache-Control", "max-age=600")])

    with Backend(handler) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        path = os.path.join(str(e.prefix), "cache", "main")
        if os.system("mount -t tmpfs -o size=1m,mode=0700 tmpfs %s "
                     "2>/dev/null" % path) != 0:
            pytest.skip("cannot mount a tmpfs here")
        try:
            os.mkdir(os.path.join(path, ".tmp"))
            time.sleep(1.2)
            for i in range(100):
                r = e.get("/s%d" % i)
                assert r.header("Cache-Status").endswith("stored"), i
            stored = len(entries(path))
            assert stored == 100
            t = time.monotonic()
            for i in range(12):
                r = e.get("/big%d" % i, timeout=10)
                assert r.status == 200 and len(r.body) == len(big)
            took = time.monotonic() - t
            time.sleep(0.3)
            gone = stored - len(entries(path))
            # One batch (16) for each second the failures lasted, and
            # one more for a second boundary crossed.
            assert 0 < gone <= 16 * (int(took) + 2), (gone, took)
        finally:
            try:
                e.stop()
            finally:
                os.system("umount %s 2>/dev/null || umount -l %s"
                          % (path, path))
