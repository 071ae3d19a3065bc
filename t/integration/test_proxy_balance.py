"""Load balancing (config.md Upstreams): the distribution of each
algorithm, and active health checks shared by every worker."""

import socket
import threading
import time

from conftest import http_request, wait_for
from proxy_backend import Backend, response


def conf(text, **ports):
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def group_conf(balance, ports, extra="", weights=None, workers=1):
    servers = ""
    for i, p in enumerate(ports):
        w = weights[i] if weights else 1
        servers += "\n          - {address: 127.0.0.1:%d, weight: %d}" % (p, w)
    return """
workers: %d
upstreams:
  app:
    balance: %s%s
    servers:%s
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        proxy: {pass: app}
""" % (workers, balance, extra, servers)


def tagged(name):
    def h(req, conn):
        return response(200, name.encode())
    return h


def test_round_robin_weights(eddy):
    with Backend(tagged("a")) as a, Backend(tagged("b")) as b:
        e = eddy(group_conf("round_robin", [a.port, b.port], weights=[1, 3]))
        got = [e.get("/").body for _ in range(40)]
        assert got.count(b"a") == 10 and got.count(b"b") == 30
        # Smooth: never more than three b in a row.
        assert b"bbbb" not in b"".join(got)


def test_least_conn_avoids_busy_server(eddy):
    def slow_a(req, conn):
        if req.target == "/slow":
            time.sleep(1.5)
        return response(200, b"a")
    with Backend(slow_a) as a, Backend(tagged("b")) as b:
        e = eddy(group_conf("least_conn", [a.port, b.port]))
        out = {}
        t = threading.Thread(target=lambda: out.setdefault(
            "r", e.get("/slow", timeout=10)))
        t.start()
        assert a.wait_requests(1)
        got = [e.get("/q").body for _ in range(10)]
        t.join()
        assert out["r"].body == b"a"
        assert got == [b"b"] * 10
        # Idle again: shared.
        got = [e.get("/q").body for _ in range(10)]
        assert got.count(b"a") == 5


def test_ip_hash_sticks_per_client(eddy):
    with Backend(tagged("a")) as a, Backend(tagged("b")) as b, \
            Backend(tagged("c")) as c:
        e = eddy(group_conf("ip_hash", [a.port, b.port, c.port]))
        seen = {}
        for i in range(1, 31):
            ip = "127.0.0.%d" % i
            for _ in range(3):
                s = socket.socket()
                s.bind((ip, 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", e.port))
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                who = data.rsplit(b"\r\n\r\n", 1)[1]
                assert seen.setdefault(ip, who) == who, ip
        assert len(set(seen.values())) == 3


def test_hash_consistent_by_key(eddy):
    with Backend(tagged("a")) as a, Backend(tagged("b")) as b, \
            Backend(tagged("c")) as c:
        e = eddy(group_conf("hash", [a.port, b.port, c.port],
                            extra="\n    hash_key: $uri"))
        first = {}
        for rnd in range(3):
            for i in range(40):
                who = e.get("/item/%d?r=%d" % (i, rnd)).body
                assert first.setdefault(i, who) == who
        counts = [list(first.values()).count(x) for x in (b"a", b"b", b"c")]
        assert min(counts) >= 5, counts


def test_random_two_spreads(eddy):
    with Backend(tagged("a")) as a, Backend(tagged("b")) as b, \
            Backend(tagged("c")) as c:
        e = eddy(group_conf("random_two", [a.port, b.port, c.port]))
        got = [e.get("/").body for _ in range(150)]
        for x in (b"a", b"b", b"c"):
            assert got.count(x) >= 20, [got.count(y) for y in (b"a", b"b",
                                                              b"c")]


def test_health_checks_shared_by_workers(eddy):
    state = {"a_ok": False}

    def a_handler(req, conn):
        if req.target == "/healthz":
            return response(200 if state["a_ok"] else 500, b"")
        return response(200, b"a")

    def b_handler(req, conn):
        return response(200, b"" if req.target == "/healthz" else b"b")

    with Backend(a_handler) as a, Backend(b_handler) as b:
        e = eddy(conf("""
            workers: 2
            error_log: {path: logs/error.log, level: info}
            upstreams:
              app:
                servers: [127.0.0.1:@A@, 127.0.0.1:@B@]
                health_check: {path: /healthz, interval: 200ms, timeout: 1s, fails: 2, passes: 2, expect_status: 200-299}
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: app}
            """, A=a.port, B=b.port))
        down = "server 127.0.0.1:%d is down" % a.port
        assert wait_for(lambda: down in e.error_log, 5), e.error_log
        assert e.error_log.count(down) == 1
        # Every worker knows: no request reaches a.
        before = len([r for r in a.requests if r.target != "/healthz"])
        for i in range(20):
            assert http_request(e.port, path="/x%d" % i).body == b"b"
        after = len([r for r in a.requests if r.target != "/healthz"])
        assert after == before == 0
        # One check per interval, whatever the number of workers.
        n0 = len([r for r in b.requests if r.target == "/healthz"])
        time.sleep(1.0)
        n1 = len([r for r in b.requests if r.target == "/healthz"])
        assert 2 <= n1 - n0 <= 7, n1 - n0
        assert b.requests[-1].head.startswith(b"GET /healthz HTTP/1.1\r\n")

        state["a_ok"] = True
        up = "server 127.0.0.1:%d is up" % a.port
        assert wait_for(lambda: up in e.error_log, 5), e.error_log
        got = [http_request(e.port, path="/y%d" % i).body for i in range(20)]
        assert b"a" in got and b"b" in got


def test_health_check_connect_failure(eddy):
    from conftest import free_port
    dead = free_port()
    with Backend(tagged("b")) as b:
        e = eddy(conf("""
            workers: 1
            error_log: {path: logs/error.log, level: info}
            upstreams:
              app:
                servers: [{address: 127.0.0.1:@A@, max_fails: 0}, 127.0.0.1:@B@]
                health_check: {interval: 100ms, fails: 1}
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    proxy: {pass: app}
            """, A=dead, B=b.port))
        assert wait_for(lambda: "is down" in e.error_log, 5)
        assert "connect failed" in e.error_log
        for _ in range(10):
            assert e.get("/").body == b"b"
