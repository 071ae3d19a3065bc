"""The fleet metrics of `status: prometheus` (fleet.md "Configuration
distribution and metrics"): eddy_build_info, eddy_config_info with -T's
sha256, eddy_generation, eddy_reload_failures_total, eddy_draining,
eddy_last_reload_success_timestamp_seconds and
eddy_proxy_protocol_errors_total, the master's values read by the workers
from shared memory. The page is checked by `promtool check metrics` when
promtool is installed, and always by a strict reading of the text
exposition format here."""

import math
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import split_response, wait_for

CONFIG = """
workers: 2
drain_delay: 2s
shutdown_timeout: 3s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
access_log: off
servers:
  - listen: 127.0.0.1:{port}
    locations:
      = /metrics:
        status: prometheus
      = /healthz:
        health: true
      /:
        return: {status: 200, body: "BODY\\n"}
  - listen: {address: 127.0.0.1:{port1}, proxy_protocol: true}
    locations:
      /:
        return: 204
"""

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVALUE = r'"((?:[^"\\\n]|\\[\\"n])*)"'
FLOAT = r"([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?" \
        r"|[-+]?Inf|NaN)"
SAMPLE_RE = re.compile(r"^(%s)(?:\{(.*)\})? %s(?: -?[0-9]+)?$"
                       % (NAME, FLOAT))
PAIR_RE = re.compile(r"(%s)=%s" % (LABEL, LVALUE))
HELP_RE = re.compile(r"^# HELP (%s) ((?:[^\\\n]|\\[\\n])*)$" % NAME)
TYPE_RE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|"
                     r"untyped)$" % NAME)


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1),
                                                        m.group(1)), v)


def parse_labels(text):
    """{name: value} from the inside of {...}, strictly: pairs joined by
    single commas (one trailing comma allowed), escapes \\\\ \\" \\n."""
    labels, pos = {}, 0
    while pos < len(text):
        m = PAIR_RE.match(text, pos)
        assert m, "bad labels %r at %d" % (text, pos)
        name = m.group(1)
        assert not name.startswith("__"), "reserved label " + name
        assert name not in labels, "label twice: " + text
        labels[name] = unescape(m.group(2))
        pos = m.end()
        if pos < len(text):
            assert text[pos] == ",", "bad labels %r" % text
            pos += 1
    return labels


def check_exposition(text):
    """Reads the text format as strictly as promtool does (and its lint
    rules): returns {(name, ((label, value), ...)): value}."""
    assert text.endswith("\n") and "\n\n" not in text
    types, helps, samples = {}, {}, {}
    sampled, done, current = set(), set(), None
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            m = HELP_RE.match(line) or TYPE_RE.match(line)
            assert m, "bad comment line %r" % line
            name = m.group(1)
            table = helps if line.startswith("# HELP") else types
            assert name not in table, "HELP or TYPE twice: " + line
            assert name not in sampled, "HELP/TYPE after samples: " + line
            table[name] = m.group(2)
            continue
        m = SAMPLE_RE.match(line)
        assert m, "bad sample line %r" % line
        name, labels = m.group(1), parse_labels(m.group(2) or "")
        value = float(m.group(3))
        family = name
        if name not in types:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert types.get(base) in ("histogram", "summary"), \
                "sample without a TYPE: " + line
            family = base
        if types[family] == "histogram" and name.endswith("_bucket"):
            assert "le" in labels, line
        if family != current:
            assert family not in done, "family split: " + family
            if current:
                done.add(current)
            current = family
        key = (name, tuple(sorted(labels.items())))
        assert key not in samples, "series twice: " + line
        assert not math.isnan(value) or types[family] == "untyped"
        samples[key] = value
        sampled.add(family)
    # promtool's lint: counters end in _total, others do not; names
    # in snake case; every family has HELP.
    for name, kind in types.items():
        assert name in helps, "no HELP for " + name
        assert name == name.lower(), name
        if kind == "counter":
            assert name.endswith("_total"), "counter " + name
        else:
            assert not name.endswith("_total"), kind + " " + name
    return samples


def scrape(e):
    data = e.raw(b"GET /metrics HTTP/1.1\r\nHost: t\r\n"
                 b"Connection: close\r\n\r\n")
    status, h, body = split_response(data)
    assert status == 200
    text = body.decode()
    samples = check_exposition(text)
    promtool = shutil.which("promtool")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=body,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        assert p.returncode == 0, p.stdout + p.stderr
    return samples, text


def one(samples, name):
    """The labels and value of the only series of name."""
    found = [(dict(k[1]), v) for k, v in samples.items() if k[0] == name]
    assert len(found) == 1, (name, found)
    return found[0]


def dump_sha(e):
    rc, out, err = e.ctl("-T")
    assert rc == 0, err
    m = re.match(r"# sha256: ([0-9a-f]{64})\n", out)
    assert m, out[:200]
    return m.group(1)


def start(eddy, body="v1"):
    """A server whose PROXY listener ({port1}) nothing has connected to
    (the fixture's readiness probe would count as a broken header)."""
    e = eddy(CONFIG.replace("BODY", body), ports=2, start=False)
    e.start(wait=False)
    e.ports, ports = e.ports[:1], e.ports
    try:
        e.wait_ready()
    finally:
        e.ports = ports
    e.wait_workers(2)
    return e


def test_check_exposition_is_strict():
    """The reader refuses what promtool refuses."""
    good = ('# HELP a_total A.\n# TYPE a_total counter\n'
            'a_total{x="q\\"\\\\\\n"} 1\n')
    assert check_exposition(good)[("a_total",
                                   (("x", 'q"\\\n'),))] == 1
    bad = [
        '# TYPE a counter\n# HELP a A.\na 1\n',          # counter name
        '# HELP a A.\n# TYPE a gauge\na{x="\\q"} 1\n',   # bad escape
        '# HELP a A.\n# TYPE a gauge\na{x="1"} one\n',   # bad value
        '# HELP a A.\n# TYPE a gauge\na 1\na 2\n',       # twice
        '# HELP a A.\n# TYPE a gauge\n'
        '# HELP b B.\n# TYPE b gauge\na 1\nb 1\na{x="1"} 1\n',  # split
        '# HELP a A.\n# TYPE a gauge\na{1x="1"} 1\n',    # label name
        '# HELP a A.\n# TYPE a gauge\na 1\n# HELP a A.\n',  # late HELP
        '# TYPE a gauge\na 1\n',                         # no HELP
        'b 1\n',                                         # no TYPE
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            check_exposition(text)


def test_fleet_metrics_at_start(eddy):
    t0 = time.time()
    e = start(eddy)
    samples, text = scrape(e)
    labels, v = one(samples, "eddy_build_info")
    rc, out, err = e.ctl("-v")
    assert labels == {"version": (out or err).strip().split("/", 1)[1]}
    assert v == 1
    labels, v = one(samples, "eddy_config_info")
    assert labels == {"sha256": dump_sha(e)} and v == 1
    assert one(samples, "eddy_generation")[1] == 1
    assert one(samples, "eddy_reload_failures_total")[1] == 0
    assert one(samples, "eddy_draining")[1] == 0
    assert one(samples, "eddy_proxy_protocol_errors_total")[1] == 0
    ts = one(samples, "eddy_last_reload_success_timestamp_seconds")[1]
    assert t0 - 2 <= ts <= time.time() + 1
    for name, kind in (("eddy_build_info", "gauge"),
                       ("eddy_config_info", "gauge"),
                       ("eddy_generation", "gauge"),
                       ("eddy_reload_failures_total", "counter"),
                       ("eddy_draining", "gauge"),
                       ("eddy_last_reload_success_timestamp_seconds",
                        "gauge")):
        assert "# TYPE %s %s\n" % (name, kind) in text
    assert "# TYPE eddy_handover_connections_total counter\n" in text
    for result in ("adopted", "closed"):
        assert ('eddy_handover_connections_total{result="%s"} 0\n' % result
                in text)


def test_reload_moves_generation_sha_and_failures(eddy):
    e = start(eddy, "v1")
    first_sha = dump_sha(e)
    samples, _ = scrape(e)
    ts1 = one(samples, "eddy_last_reload_success_timestamp_seconds")[1]
    time.sleep(1.1)

    e.write_config(CONFIG.replace("BODY", "v2"))
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 0, err
    new_sha = dump_sha(e)
    assert new_sha != first_sha
    assert wait_for(lambda: e.get("/").body == b"v2\n", 5)
    samples, _ = scrape(e)
    assert one(samples, "eddy_generation")[1] == 2
    assert one(samples, "eddy_config_info")[0] == {"sha256": new_sha}
    assert one(samples, "eddy_reload_failures_total")[1] == 0
    assert one(samples, "eddy_reloads_total")[1] == 1
    ts2 = one(samples, "eddy_last_reload_success_timestamp_seconds")[1]
    assert ts2 > ts1

    # A bad configuration (`-s reload` would not even send it): counted,
    # nothing else moves.
    e.write_config(CONFIG.replace("BODY", "v3") + "nonsense: 1\n")
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: one(scrape(e)[0],
                                "eddy_reload_failures_total")[1] == 1, 5)
    samples, _ = scrape(e)
    assert one(samples, "eddy_generation")[1] == 2
    assert one(samples, "eddy_config_info")[0] == {"sha256": new_sha}
    assert one(samples,
               "eddy_last_reload_success_timestamp_seconds")[1] == ts2
    # And again: a counter.
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: one(scrape(e)[0],
                                "eddy_reload_failures_total")[1] == 2, 5)


def test_draining_is_one_during_the_delay(eddy):
    e = start(eddy)
    e.signal(signal.SIGQUIT)
    assert wait_for(lambda: "draining: health answers 503 for 2s"
                    in e.error_log, 5), e.error_log
    samples, _ = scrape(e)
    assert one(samples, "eddy_draining")[1] == 1
    assert e.wait_exit(10) == 0


def test_proxy_protocol_errors_counted(eddy):
    e = start(eddy)
    assert one(scrape(e)[0], "eddy_proxy_protocol_errors_total")[1] == 0
    data, closed = e.raw_ex(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
                            port=e.ports[1])
    assert closed and data == b""
    assert wait_for(lambda: one(scrape(e)[0],
                                "eddy_proxy_protocol_errors_total")[1] == 1,
                    5)
