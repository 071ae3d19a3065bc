"""The status module (config.md `status`): Prometheus text, JSON and HTML
views of the counters summed over workers, upstream servers with their
histogram, counters that survive reloads and worker restarts, config
errors."""

import json
import os
import re
import signal

import pytest

from conftest import check_config_error, free_port, split_response, wait_for
from proxy_backend import Backend, response

CONFIG = """
workers: 2
pid_file: logs/eddy.pid
error_log: logs/error.log
upstreams:
  app:
    servers: [127.0.0.1:@B@]
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /metrics:
        status: prometheus
      = /status.json:
        status: json
      = /status:
        status: html
      /app/:
        proxy: {pass: app}
      /:
        return: {status: 200, body: "hello\\n"}
"""

METRIC_RE = re.compile(r'^(eddy_[a-z][a-z0-9_]*)(\{[a-z][a-z0-9_]*="[^"]*"'
                       r'(,[a-z][a-z0-9_]*="[^"]*")*\})?'
                       r' (-?[0-9.]+(e[+-]?[0-9]+)?)$')


def ok_backend(req, conn):
    return response(200, b"from app\n")


def get(e, path, method="GET"):
    data = e.raw(b"%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                 % (method.encode(), path.encode()))
    return split_response(data)


def prometheus(e):
    """{name or name{labels}: value} from /metrics, checking the format:
    every sample belongs to a family announced by HELP and TYPE."""
    status, h, body = get(e, "/metrics")
    assert status == 200
    assert h["content-type"] == ["text/plain; version=0.0.4; charset=utf-8"]
    assert h["cache-control"] == ["no-store"]
    text = body.decode()
    assert text.endswith("\n")
    typed, helped, samples = {}, set(), {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in typed, "family typed twice: " + line
            typed[name] = kind
            continue
        m = METRIC_RE.match(line)
        assert m, "bad sample line %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name) \
            if name not in typed else name
        assert family in typed and family in helped, line
        samples[name + (m.group(2) or "")] = float(m.group(4))
    return samples


def test_prometheus_counters_move(eddy):
    with Backend(ok_backend) as b:
        e = eddy(CONFIG.replace("@B@", str(b.port)))
        e.wait_workers(2)
        # A worker is listed once the master has recorded its slot, just
        # after the fork that /proc already shows.
        assert wait_for(lambda: prometheus(e)["eddy_workers"] == 2, 5)
        before = prometheus(e)
        for _ in range(5):
            assert get(e, "/")[0] == 200
        assert get(e, "/app/x")[2] == b"from app\n"
        after = prometheus(e)
    assert after["eddy_requests_total"] >= before["eddy_requests_total"] + 7
    assert after['eddy_responses_total{class="2xx"}'] >= \
        before['eddy_responses_total{class="2xx"}'] + 6
    assert after["eddy_connections_accepted_total"] >= \
        before["eddy_connections_accepted_total"] + 7
    assert after["eddy_sent_bytes_total"] > before["eddy_sent_bytes_total"]
    assert after["eddy_received_bytes_total"] > \
        before["eddy_received_bytes_total"]
    # This request's own connection is open and being answered.
    assert after["eddy_connections_active"] >= 1
    assert after["eddy_connections_writing"] >= 1
    for name in ("eddy_uptime_seconds", "eddy_reloads_total",
                 "eddy_worker_restarts_total",
                 "eddy_accept_empty_wakeups_total",
                 "eddy_proxy_protocol_errors_total",
                 "eddy_connections_reading", "eddy_connections_idle"):
        assert name in after
    lbl = '{upstream="app",server="127.0.0.1:%d"}' % b.port
    assert after["eddy_upstream_requests_total" + lbl] == 1
    assert after["eddy_upstream_failures_total" + lbl] == 0
    assert after["eddy_upstream_up" + lbl] == 1
    assert after["eddy_upstream_response_time_seconds_count" + lbl] == 1
    inf = lbl[:-1] + ',le="+Inf"}'
    assert after["eddy_upstream_response_time_seconds_bucket" + inf] == 1


def test_json_and_html(eddy):
    e = eddy(CONFIG.replace("@B@", str(free_port())))
    e.wait_workers(2)
    # Listed once the master has recorded the slot, after the fork.
    assert wait_for(lambda: json_status(e)["workers"] == 2, 5)
    get(e, "/nothing-here")   # 200 from return
    assert get(e, "/app/")[0] == 502
    status, h, body = get(e, "/status.json")
    assert status == 200
    assert h["content-type"] == ["application/json"]
    assert h["cache-control"] == ["no-store"]
    doc = json.loads(body)
    assert doc["workers"] == 2
    assert doc["requests"]["5xx"] >= 1 and doc["requests"]["2xx"] >= 1
    assert doc["requests"]["total"] >= 3
    assert set(doc["connections"]) == {"accepted", "active", "reading",
                                       "writing", "idle",
                                       "accept_empty_wakeups",
                                       "proxy_protocol_errors"}
    (srv,) = doc["upstreams"]["app"]
    assert srv["requests"] == 1 and srv["failures"] == 1
    assert srv["state"] in ("up", "down")
    assert sum(srv["response_time_ms"].values()) == 1
    status, h, body = get(e, "/status")
    assert status == 200
    assert h["content-type"] == ["text/html; charset=utf-8"]
    assert b"<table" in body and b"127.0.0.1:" in body
    status, h, body = get(e, "/status", "HEAD")
    assert status == 200 and body == b""
    status, h, _ = get(e, "/metrics", "POST")
    assert status == 405 and h["allow"] == ["GET, HEAD"]


def json_status(e):
    return json.loads(get(e, "/status.json")[2])


def test_counters_survive_reload_and_restart(eddy):
    e = eddy(CONFIG.replace("@B@", str(free_port())))
    old = e.wait_workers(2)
    for _ in range(4):
        get(e, "/")
    first = json_status(e)
    assert first["reloads"] == 0 and first["worker_restarts"] == 0

    e.signal(signal.SIGHUP)
    assert wait_for(lambda: json_status(e)["reloads"] == 1, 10), e.all_logs()
    now = e.wait_workers(2, exclude=old)
    doc = json_status(e)
    assert doc["requests"]["total"] > first["requests"]["total"]
    assert doc["connections"]["accepted"] > first["connections"]["accepted"]

    os.kill(now[0], signal.SIGKILL)
    e.wait_workers(2, exclude=[now[0]])
    assert wait_for(lambda: json_status(e)["worker_restarts"] == 1, 10)
    assert wait_for(lambda: json_status(e)["workers"] == 2, 5)
    doc = json_status(e)
    # The dead worker's counters stay in the totals, its gauges do not.
    assert doc["requests"]["total"] > first["requests"]["total"]
    assert doc["connections"]["active"] == 1
    assert doc["connections"]["writing"] == 1



def test_config_errors(tmp_path):
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                status: xml
        """, "xml", r"status")
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            status: json
        """, "status", r"not allowed|location")
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                status: json
                return: 204
        """, "status", r"one content handler")
