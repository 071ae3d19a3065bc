"""The limit_req module (config.md, inheritable `limit_req`): a leaky
bucket per key shared by every worker, refusals with the configured
status, empty keys not limited, order after access, config errors."""

import re
import socket
import time

import pytest

from conftest import check_config_error, read_until_close, split_response


def get(e, path, extra=b""):
    data = e.raw(b"GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n"
                 % (path.encode(), extra))
    return split_response(data)


SHARED = """
workers: 2
error_log: logs/error.log
events: {accept: reuseport}
headers:
  add: {X-Pid: $pid}
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        limit_req: {key: $remote_addr, rate: 1r/m, burst: 2}
        return: {status: 200, body: "ok\\n"}
"""


def test_burst_shared_by_workers(eddy):
    e = eddy(SHARED)
    e.wait_workers(2)
    statuses, pids = [], set()
    # Separate connections, spread over both workers by SO_REUSEPORT;
    # 1r/m refills nothing while the test runs.
    for i in range(40):
        status, h, body = get(e, "/")
        statuses.append(status)
        pids.add(h["x-pid"][0])
        if i >= 5 and len(pids) == 2:
            break
    assert len(pids) == 2, "one worker served every request"
    assert statuses[:3] == [200, 200, 200]
    assert set(statuses[3:]) == {429}
    assert "limiting requests" in e.error_log
    assert 'by key "127.0.0.1"' in e.error_log


def test_refill_keys_and_status(eddy):
    e = eddy("""
        workers: 1
        limit_req: {key: $http_x_key, rate: 10r/s, burst: 0, status: 503}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
        """)
    assert get(e, "/", b"X-Key: a\r\n")[0] == 200
    status, _, body = get(e, "/", b"X-Key: a\r\n")
    assert status == 503 and b"503" in body
    # Another key has its own bucket; no key (empty value) is not limited.
    assert get(e, "/", b"X-Key: b\r\n")[0] == 200
    assert [get(e, "/")[0] for _ in range(5)] == [200] * 5
    # 10r/s: a tenth of a second later a request passes again.
    time.sleep(0.25)
    assert get(e, "/", b"X-Key: a\r\n")[0] == 200


def test_access_runs_first(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            limit_req: {rate: 1r/m, burst: 1}
            locations:
              = /denied:
                access: [{deny: all}]
                return: 204
              /:
                return: 204
        """)
    # Refused by access: the bucket is not touched.
    assert [get(e, "/denied")[0] for _ in range(4)] == [403] * 4
    assert [get(e, "/x")[0] for _ in range(3)] == [204, 204, 429]



@pytest.mark.parametrize("block,needle,pattern", [
    ("{rate: 10r/h}", "10r/h", r"limit_req.rate.*10r/s or 30r/m"),
    ("{rate: 0r/s}", "0r/s", r"limit_req.rate"),
    ("{rate: 1r/s, burst: -1}", "-1", r"limit_req.burst.*0 to 100000"),
    ("{rate: 1r/s, status: 200}", "200", r"limit_req.status.*400 to 599"),
    ("{rate: 1r/s, zone: x}", "zone", r'unknown key "zone" in limit_req'),
    ("{burst: 5}", "{burst", r'expected "rate"'),
    ('{rate: 1r/s, key: ""}', '""', r"limit_req.key"),
    ("10r/s", "10r/s", r"expected a mapping"),
])
def test_config_errors(tmp_path, block, needle, pattern):
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                limit_req: %s
                return: 204
        """ % block, needle, pattern)


def get_from(e, addr, path="/"):
    """One request from the loopback source address addr."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(5)
        s.bind((addr, 0))
        s.connect(("127.0.0.1", e.port))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data, _ = read_until_close(s)
    finally:
        s.close()
    return split_response(data)[0]


# Eight addresses that all fell in one 4-way set of the former table, so
# that each new one took the bucket of the oldest: every request passed.
COLLIDING = ["127.0.6.174", "127.0.8.182", "127.0.16.97", "127.0.28.130",
             "127.0.41.87", "127.0.46.70", "127.0.57.180", "127.0.58.50"]


def test_regress_colliding_addresses_keep_their_rate(eddy):
    e = eddy("""
        workers: 2
        error_log: logs/error.log
        events: {accept: reuseport}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                limit_req: {rate: 1r/m}
                return: {status: 200, body: "ok\\n"}
        """)
    e.wait_workers(2)
    rounds = [[get_from(e, a) for a in COLLIDING] for _ in range(5)]
    # 1r/m, burst 0: one request per address in a minute, whatever the
    # other addresses do.
    assert rounds[0] == [200] * len(COLLIDING)
    assert rounds[1:] == [[429] * len(COLLIDING)] * 4
    for a in COLLIDING:
        assert 'by key "%s"' % a in e.error_log
    assert "table is full" not in e.error_log


def pipelined(e, keys, batch=500):
    """GET / once per key (X-Key: key), pipelined in batches of one
    connection each; returns the statuses in order."""
    statuses = []
    for i in range(0, len(keys), batch):
        with e.connect(timeout=30) as s:
            s.sendall(b"".join(b"GET / HTTP/1.1\r\nHost: t\r\nX-Key: %s\r\n\r\n"
                               % k.encode() for k in keys[i:i + batch]))
            buf = b""
            want = len(keys[i:i + batch])
            got = 0
            while got < want:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    b = s.recv(1 << 16)
                    assert b, "closed after %d responses" % len(statuses)
                    buf += b
                    continue
                head = buf[:end]
                n = int(re.search(rb"\r\nContent-Length: (\d+)", head)
                        .group(1))
                while len(buf) < end + 4 + n:
                    b = s.recv(1 << 16)
                    assert b, "closed in a body"
                    buf += b
                statuses.append(int(head[9:12]))
                buf = buf[end + 4 + n:]
                got += 1
    return statuses


def test_regress_full_table_fails_closed(eddy):
    """More keys than the table holds, at 1r/m: the table fills, new keys
    are refused with limit_req's status (never a bucket taken from a key
    still over its rate), the error log says so once, and no key passes
    twice."""
    e = eddy("""
        workers: 2
        error_log: {path: logs/error.log, level: error}
        access_log: off
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                limit_req: {key: $http_x_key, rate: 1r/m, status: 503}
                return: {status: 200, body: "ok\\n"}
        """)
    e.wait_workers(2)
    keys = ["k%d" % i for i in range(20000)]
    first = pipelined(e, keys[:10000]) + pipelined(e, keys[10000:])
    assert set(first) == {200, 503}
    # 16384 buckets: two choices of a set fill them nearly all.
    assert 15000 <= first.count(200) <= 16384
    # Every key again, in another order, on connections that both
    # workers take: all refused, stored or not.
    again = pipelined(e, keys[::2]) + pipelined(e, keys[1::2])
    assert again.count(200) == 0, again.count(200)
    full = [ln for ln in e.error_log.splitlines() if "table is full" in ln]
    assert len(full) == 1, full
    assert re.search(r'\[error\] .*limit_req table is full: requests of new '
                     r'keys are refused until buckets refill \(16384 '
                     r'buckets\), key "k\d+", location: "/", '
                     r'client: 127\.0\.0\.1, server: , '
                     r'request: "GET / HTTP/1\.1", host: "t"$', full[0]), full[0]


def test_regress_key_cannot_forge_log_lines(eddy):
    """A key made of request bytes ($uri is decoded) is logged escaped:
    a %0a in it does not start a line of its own."""
    e = eddy("""
        workers: 1
        error_log: logs/error.log
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                limit_req: {key: $uri, rate: 1r/m}
                return: 204
        """)
    path = ("/a%0a2020/01/01%2000:00:00%20%5bemerg%5d%201%230:%20forged"
            "%22%5c%e9")
    assert [get(e, path)[0] for _ in range(2)] == [204, 429]
    log = e.error_log
    assert not [ln for ln in log.splitlines() if ln.startswith("2020/")], log
    assert ('by key "/a\\x0A2020/01/01 00:00:00 [emerg] 1#0: forged\\x22'
            '\\x5C\\xE9", location: "/"') in log, log
