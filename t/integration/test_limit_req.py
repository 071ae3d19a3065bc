"""The limit_req module (config.md, inheritable `limit_req`): a leaky
bucket per key shared by every worker, refusals with the configured
status, empty keys not limited, order after access, config errors."""

import time

import pytest

from conftest import check_config_error, split_response


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
