"""The cache manager process (cache.md, Storage, restart and eviction):
forked and respawned by the master, loading at start, eviction without
traffic (inactive, max_size), stale temp files removed."""

import glob
import os
import signal
import socket
import time

from conftest import pid_alive, proc_children, wait_for
from proxy_backend import Backend, TAKEN, response

CONF = """
    workers: 1
    caches:
      main:
        path: {prefix}/cache/main
        %s
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
"""


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")[0].decode()
    except OSError:
        return ""


def managers(e):
    return [p for p in proc_children(e.pid)
            if cmdline(p) == "eddy: cache manager"]


def entries(e):
    return glob.glob(os.path.join(str(e.prefix), "cache", "main", "*", "*",
                                  "*"))


def start(eddy, b, cache="max_size: 64m"):
    return eddy((CONF % cache).replace("@B@", str(b.port)))


def test_manager_is_forked_and_respawned(eddy):
    with Backend(lambda req, conn: response(200, b"x")) as b:
        e = start(eddy, b)
        found = wait_for(lambda: managers(e), 5)
        assert found and len(found[0]) == 1 if isinstance(found, tuple) \
            else found
        (pid,) = managers(e)
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: [p for p in managers(e) if p != pid], 5)
        assert "cache manager %d exited on signal 9; respawning" % pid \
            in e.all_logs()
        assert len(managers(e)) == 1
        # Workers still serve meanwhile.
        assert e.get("/").status == 200
        master = e.pid
        e.stop()
        assert not [p for p in proc_children(master)]


def test_no_manager_without_caches(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /: {return: 204}
        """)
    time.sleep(0.3)
    assert managers(e) == []


def test_inactive_entries_removed_without_traffic(eddy):
    with Backend(lambda req, conn: response(
            200, b"i", [("Cache-Control", "max-age=600")])) as b:
        e = start(eddy, b, "max_size: 64m\n        inactive: 2s")
        e.get("/i")
        assert len(entries(e)) == 1
        assert wait_for(lambda: entries(e) == [], 8)
        assert e.get("/i").header("X-Cache") == "MISS"


def test_restart_loads_entries_and_holds_max_size(eddy):
    with Backend(lambda req, conn: response(
            200, b"m" * 20000, [("Cache-Control", "max-age=600")])) as b:
        e = start(eddy, b, "max_size: 10m")
        for i in range(6):
            e.get("/m%d" % i)
        assert len(entries(e)) == 6
        e.stop()
        e.write_config((CONF % "max_size: 50k\n        max_entry_size: 30k")
                       .replace("@B@", str(b.port)))
        e.start()
        assert wait_for(lambda: len(entries(e)) <= 2, 8), entries(e)
        assert "cache \"main\": 6 files loaded" in e.all_logs()
        # What is left (the most recently stored) still hits.
        assert e.get("/m5").header("X-Cache") == "HIT"
        assert e.get("/m0").header("X-Cache") == "MISS"


def test_stale_temp_files_removed(eddy):
    with Backend(lambda req, conn: response(200, b"t")) as b:
        e = start(eddy, b)
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        dead = os.path.join(tmp, "999999999.1")
        old = os.path.join(tmp, "%d.7" % e.pid)
        young = os.path.join(tmp, "%d.8" % e.pid)
        for p in (dead, old, young):
            open(p, "wb").write(b"partial")
        t = time.time() - 700
        os.utime(old, (t, t))
        assert wait_for(lambda: not os.path.exists(dead)
                        and not os.path.exists(old), 10)
        assert os.path.exists(young)


def test_worker_killed_mid_fill(eddy):
    def handler(req, conn):
        if req.path == "/slow":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                         b"Cache-Control: max-age=600\r\n\r\n" + b"s" * 50)
            time.sleep(3)
            return TAKEN
        return response(200, b"old", [("Cache-Control", "max-age=600")])

    with Backend(handler) as b:
        e = start(eddy, b)
        e.get("/old")
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_for(lambda: os.listdir(tmp), 5)
        worker = [p for p in proc_children(e.pid) if p not in managers(e)]
        for p in worker:
            os.kill(p, signal.SIGKILL)
        s.close()
        # The dead worker's temp file goes; old entries still hit.
        assert wait_for(lambda: os.listdir(tmp) == [], 10), os.listdir(tmp)
        assert wait_for(lambda: e.get("/old").header("X-Cache") == "HIT", 5)
        e.stop()
        e.start()
        assert e.get("/old").header("X-Cache") == "HIT"
        assert os.listdir(tmp) == []


RELOAD_CONF = """
    workers: 1
    caches:
      main:
        path: {prefix}/cache/main
        max_size: 64m
        keys_zone: %s
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main}
            headers: {set: {X-Cache: $upstream_cache_status}}
          = /sj:
            status: json
"""


def cache_stats(e):
    import json
    return json.loads(e.get("/sj").body)["caches"]["main"]


def test_reload_keeps_the_zone(eddy):
    with Backend(lambda req, conn: response(
            200, b"r", [("Cache-Control", "max-age=600")])) as b:
        e = eddy((RELOAD_CONF % "1m").replace("@B@", str(b.port)))
        e.get("/r")
        assert e.get("/r").header("X-Cache") == "HIT"
        before = cache_stats(e)
        assert before["requests"]["hit"] == 1
        # Same path, levels and keys_zone: the index and its counters go
        # on; the hit stays a hit.
        e.write_config((RELOAD_CONF % "1m").replace("@B@", str(b.port))
                       + "\n# reloaded\n")
        rc, out, err = e.ctl("-s", "reload")
        assert rc == 0, (out, err)
        assert e.get("/r").header("X-Cache") == "HIT"
        after = cache_stats(e)
        assert after["requests"]["hit"] == 2
        assert after["entries"] == 1
        # Another keys_zone: a new index, loaded again by the manager.
        e.write_config((RELOAD_CONF % "2m").replace("@B@", str(b.port)))
        rc, out, err = e.ctl("-s", "reload")
        assert rc == 0, (out, err)
        assert e.get("/r").header("X-Cache") == "HIT"
        st = cache_stats(e)
        assert st["requests"]["hit"] == 1
        assert wait_for(lambda: cache_stats(e)["entries"] == 1, 5)
        assert len(b.requests) == 1


def test_restart_evicts_the_least_recently_used_first(eddy):
    # After a restart the files' times are all the index knows of their
    # use: loaded entries are ordered by them, whatever order the walk of
    # the directories found them in.
    with Backend(lambda req, conn: response(
            200, b"m" * 20000, [("Cache-Control", "max-age=600")])) as b:
        e = start(eddy, b, "max_size: 10m")
        names = ["/%s%d" % (p, i) for p in "xyz" for i in range(2)]
        by_file = {}
        for n in names:
            before = set(entries(e))
            e.get(n)
            (f,) = set(entries(e)) - before
            by_file[f] = n
            time.sleep(1.1)     # file times a second apart
        e.stop()
        e.write_config((CONF % "max_size: 50k\n        max_entry_size: 30k")
                       .replace("@B@", str(b.port)))
        e.start()
        assert wait_for(lambda: len(entries(e)) <= 2, 8), entries(e)
        time.sleep(1.2)         # another pass of the manager changes nothing
        assert sorted(by_file[f] for f in entries(e)) == names[-2:]
