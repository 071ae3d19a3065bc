"""The access log (config.md "Inheritable keys" and "Variables"):
formats combined, common, json and custom, `off`, inheritance, buffering
(lines within about a second) and reopening on USR1."""

import json
import os
import re
import signal
import time

import pytest

from conftest import wait_for
from httputil import Client, exchange, get, request

CONFIG = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    access_log: {path: logs/combined.log, format: combined}
    locations:
      /:
        return: {status: 200, body: "hello\\n"}
      /missing/:
        return: 404
      /common/:
        access_log: {path: logs/common.log, format: common}
        return: {status: 200, body: "common\\n"}
      /json/:
        access_log: {path: logs/json.log, format: json}
        return: {status: 201, body: "json!\\n"}
      /custom/:
        access_log: {path: logs/custom.log, format: "$request_method $uri $status"}
        return: {status: 200, body: "custom\\n"}
      /off/:
        access_log: off
        return: {status: 200, body: "off\\n"}
"""

TIME_LOCAL = (r"\d\d/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/"
              r"\d{4}:\d\d:\d\d:\d\d [+-]\d{4}")
COMMON_RE = re.compile(r'^127\.0\.0\.1 - - \[' + TIME_LOCAL + r'\] '
                       r'"(?P<request>[^"]*)" (?P<status>\d{3}) '
                       r'(?P<bytes>\d+)$')
COMBINED_RE = re.compile(r'^127\.0\.0\.1 - - \[' + TIME_LOCAL + r'\] '
                         r'"(?P<request>[^"]*)" (?P<status>\d{3}) '
                         r'(?P<bytes>\d+) "(?P<referer>[^"]*)" '
                         r'"(?P<ua>[^"]*)"$')


@pytest.fixture
def srv(eddy):
    return eddy(CONFIG)


def lines(e, name, n, timeout=3.0):
    """Wait (bounded) until the log has at least n lines; return them."""
    path = e.prefix / "logs" / name

    def check():
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return None
        ls = text.splitlines()
        return ls if len(ls) >= n else None

    got = wait_for(check, timeout)
    if not got:
        try:
            have = path.read_text(errors="replace")
        except OSError:
            have = "<missing>"
        pytest.fail("expected %d line(s) in %s within %ss, have %r"
                    % (n, name, timeout, have))
    return got


def send(e, data):
    r, closed, rs = request(e.port, data)
    return r


def test_combined_format(srv):
    r = send(srv, get("/c/path?x=1&y=2", close=True,
                      headers=[("Referer", "http://ref.test/page"),
                               ("User-Agent", "TestAgent/1.0 (x; y)")]))
    assert r.status == 200
    (line,) = lines(srv, "combined.log", 1)
    m = COMBINED_RE.match(line)
    assert m, line
    assert m.group("request") == "GET /c/path?x=1&y=2 HTTP/1.1"
    assert m.group("status") == "200"
    assert m.group("bytes") == "6"
    assert m.group("referer") == "http://ref.test/page"
    assert m.group("ua") == "TestAgent/1.0 (x; y)"


def test_combined_without_referer_and_agent(srv):
    send(srv, get("/bare", close=True))
    (line,) = lines(srv, "combined.log", 1)
    m = COMBINED_RE.match(line)
    assert m, line
    assert m.group("referer") in ("-", "")
    assert m.group("ua") in ("-", "")


def test_combined_quote_in_agent_cannot_forge_fields(srv):
    ua = 'evil" 200 1 "x'
    send(srv, get("/q", close=True, headers=[("User-Agent", ua)]))
    (line,) = lines(srv, "combined.log", 1)
    m = COMBINED_RE.match(line)
    assert m, line
    assert m.group("request") == "GET /q HTTP/1.1"
    assert '"' not in m.group("ua")
    assert "evil" in m.group("ua")


def test_default_format_is_combined(eddy):
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            access_log: logs/plain.log
            locations:
              /:
                return: {status: 200, body: "hello\\n"}
    """)
    send(e, get("/d", close=True, headers=[("User-Agent", "UA")]))
    (line,) = lines(e, "plain.log", 1)
    m = COMBINED_RE.match(line)
    assert m, line
    assert m.group("request") == "GET /d HTTP/1.1" and m.group("ua") == "UA"


def test_common_format(srv):
    send(srv, get("/common/x?z", close=True,
                  headers=[("User-Agent", "NotLogged"),
                           ("Referer", "http://notlogged/")]))
    (line,) = lines(srv, "common.log", 1)
    m = COMMON_RE.match(line)
    assert m, line
    assert m.group("request") == "GET /common/x?z HTTP/1.1"
    assert (m.group("status"), m.group("bytes")) == ("200", "7")
    assert "NotLogged" not in line and "notlogged" not in line


def test_common_format_not_in_server_log(srv):
    """A location with its own access_log writes there only."""
    send(srv, get("/common/only", close=True))
    send(srv, get("/marker", close=True))
    lines(srv, "common.log", 1)
    ls = lines(srv, "combined.log", 1)
    assert len(ls) == 1 and "/marker" in ls[0], ls


JSON_FIELDS = ["remote_addr", "time_local", "request", "status",
               "body_bytes_sent", "http_referer", "http_user_agent",
               "request_time", "upstream_addr", "upstream_status",
               "upstream_response_time", "upstream_cache_status",
               "request_id"]


def test_json_format(srv):
    ua = 'Agent "quoted" back\\slash\ttab caf\u00e9'
    send(srv, b"GET /json/a?b=1 HTTP/1.1\r\nHost: a\r\n"
              b"Referer: http://r.test/\r\n"
              b"User-Agent: " + ua.encode("utf-8") + b"\r\n"
              b"Connection: close\r\n\r\n")
    (line,) = lines(srv, "json.log", 1)
    d = json.loads(line)
    assert isinstance(d, dict), line
    missing = [f for f in JSON_FIELDS if f not in d]
    assert not missing, "missing JSON fields %s in %s" % (missing, line)
    assert d["remote_addr"] == "127.0.0.1"
    assert re.match("^" + TIME_LOCAL + "$", d["time_local"]), d
    assert d["request"] == "GET /json/a?b=1 HTTP/1.1"
    assert int(d["status"]) == 201
    assert int(d["body_bytes_sent"]) == 6
    assert d["http_referer"] == "http://r.test/"
    # Each byte of the value is one code point (\u00XX past 0x7f).
    assert d["http_user_agent"].encode("latin-1") == ua.encode("utf-8")
    assert re.match(r"^\d+\.\d{3}$", str(d["request_time"])), d
    assert d["upstream_addr"] in (None, "", "-")
    assert d["upstream_cache_status"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", d["request_id"]), d


def test_json_escaping_of_quote_and_backslash(srv):
    ua = 'a"b\\c'
    send(srv, get("/json/esc", close=True, headers=[("User-Agent", ua)]))
    (line,) = lines(srv, "json.log", 1)
    assert '"a\\"b\\\\c"' in line, line
    assert json.loads(line)["http_user_agent"] == ua


def test_json_one_object_per_line(srv):
    with Client(srv.port) as c:
        for i in range(5):
            c.send(get("/json/%d" % i, headers=[("User-Agent", "u%d" % i)]))
            assert c.response().status == 201
    ls = lines(srv, "json.log", 5)
    objs = [json.loads(x) for x in ls]
    assert [o["request"] for o in objs] == [
        "GET /json/%d HTTP/1.1" % i for i in range(5)]
    ids = {o["request_id"] for o in objs}
    assert len(ids) == 5, "request_id not unique: %s" % ids


def test_custom_format(srv):
    send(srv, get("/custom/p%20q?x=1", close=True))
    send(srv, get("/custom/two", method="POST", close=True))
    ls = lines(srv, "custom.log", 2)
    assert ls == ["GET /custom/p q 200", "POST /custom/two 200"], ls


def test_access_log_off(srv):
    send(srv, get("/off/secret", close=True))
    send(srv, get("/after-off", close=True))
    ls = lines(srv, "combined.log", 1)
    # Flushes keep the order: the later request is there, the first not.
    assert len(ls) == 1 and "/after-off" in ls[0], ls
    for name in os.listdir(srv.prefix / "logs"):
        path = srv.prefix / "logs" / name
        if path.is_file():
            assert "/off/secret" not in path.read_text(errors="replace"), \
                name


def test_status_and_bytes_logged(srv):
    with Client(srv.port) as c:
        c.send(get("/missing/x"))
        r404 = c.response()
        assert r404.status == 404
        c.send(get("/h", method="HEAD"))
        c.response(head_request=True)
        c.send(get("/ok"))
        c.response()
    ls = lines(srv, "combined.log", 3)
    ms = [COMBINED_RE.match(x) for x in ls]
    assert all(ms), ls
    assert [(m.group("status"), m.group("bytes")) for m in ms] == [
        ("404", str(len(r404.body))), ("200", "0"), ("200", "6")]
    assert ms[1].group("request") == "HEAD /h HTTP/1.1"


def test_bad_request_logged(srv):
    out, closed = exchange(srv.port, b"GET / HTTP/1.1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    (line,) = lines(srv, "combined.log", 1)
    m = COMBINED_RE.match(line)
    assert m, line
    assert m.group("status") == "400"


def test_lines_appear_within_two_seconds(srv):
    """Buffered, but flushed every second."""
    with Client(srv.port) as c:
        c.send(get("/soon"))
        c.response()
        # the connection stays open: the flush does not wait for it
        ls = lines(srv, "combined.log", 1, timeout=2.5)
        assert "/soon" in ls[0]


def test_access_log_inherited_from_main(eddy):
    e = eddy("""
        workers: 1
        access_log: {path: logs/main.log, format: "$server_port $uri"}
        servers:
          - listen: 127.0.0.1:{port0}
            locations:
              /:
                return: {status: 200, body: "0"}
          - listen: 127.0.0.1:{port1}
            locations:
              /:
                return: {status: 200, body: "1"}
              /quiet/:
                access_log: off
                return: {status: 200, body: "q"}
    """, ports=2)
    request(e.ports[0], get("/zero", close=True))
    request(e.ports[1], get("/quiet/x", close=True))
    request(e.ports[1], get("/one", close=True))
    ls = lines(e, "main.log", 2)
    assert ls == ["%d /zero" % e.ports[0], "%d /one" % e.ports[1]], ls


def test_reopen_on_usr1(eddy):
    e = eddy("""
        workers: 1
        pid_file: logs/eddy.pid
        servers:
          - listen: 127.0.0.1:{port}
            access_log: {path: logs/a.log, format: "$uri"}
            locations:
              /:
                return: {status: 200, body: "x"}
    """)
    request(e.port, get("/before", close=True))
    assert lines(e, "a.log", 1) == ["/before"]
    logs = e.prefix / "logs"
    os.rename(logs / "a.log", logs / "a.log.1")
    # Until the reopen, lines still go to the renamed file.
    request(e.port, get("/renamed", close=True))
    assert lines(e, "a.log.1", 2) == ["/before", "/renamed"]
    e.signal(signal.SIGUSR1)
    assert wait_for(lambda: (logs / "a.log").exists(), 3), \
        "a.log not recreated after USR1; stderr:\n" + e.stderr_text()
    request(e.port, get("/after", close=True))
    assert lines(e, "a.log", 1) == ["/after"]
    assert (logs / "a.log.1").read_text().splitlines() == \
        ["/before", "/renamed"]
    assert e.running()


def test_reopen_with_ctl_reopen(eddy):
    e = eddy("""
        workers: 1
        pid_file: logs/eddy.pid
        servers:
          - listen: 127.0.0.1:{port}
            access_log: {path: logs/b.log, format: "$uri"}
            locations:
              /:
                return: {status: 200, body: "x"}
    """)
    request(e.port, get("/one", close=True))
    lines(e, "b.log", 1)
    logs = e.prefix / "logs"
    os.rename(logs / "b.log", logs / "b.log.old")
    rc, out, err = e.ctl("-s", "reopen")
    assert rc == 0, err
    assert wait_for(lambda: (logs / "b.log").exists(), 10)

    # The master creates b.log before it signals the workers: a request
    # in between is still logged to the old file. Once the worker has
    # reopened, requests go to the new one, and only there.
    def logged_anew():
        request(e.port, get("/two", close=True))
        time.sleep(0.05)
        return (logs / "b.log").read_text()

    assert wait_for(logged_anew, 5)
    assert set(lines(e, "b.log", 1)) == {"/two"}
    old = (logs / "b.log.old").read_text().splitlines()
    assert old[0] == "/one" and set(old[1:]) <= {"/two"}, old


JSON_ALL = """
workers: 1
servers:
  - listen: 127.0.0.1:{port}
    access_log: {path: logs/all.json, format: json}
    locations:
      /:
        return: {status: 200, body: "ok\\n"}
"""

# Values a header may carry (VCHAR, obs-text, SP, HTAB inside): every
# byte from 0x80 to 0xff, invalid UTF-8 of several kinds, valid UTF-8.
HIGH = bytes(range(0x80, 0x100))
BAD_UTF8 = (b"\xc3\x28 \xa0\xa1 \xe2\x28\xa1 \xf0\x90\x28\xbc \xfe\xff "
            b"\xed\xa0\x80 \xc0\xaf \xf8\x88\x80\x80\x80")
UTF8 = "caf\u00e9 \u20ac \U0001f600".encode("utf-8")


def test_regress_json_log_escapes_every_byte(eddy):
    """Whatever bytes the client sends, each JSON line is ASCII, parses
    with json.loads, and gives the bytes back (one code point per byte:
    \\u00XX past 0x7f, and for every control character)."""
    e = eddy(JSON_ALL)
    cases = [
        (b"/ua", HIGH + b'\t"\\x', UTF8),
        (b"/ref", b"a\tb", BAD_UTF8),
        (b"/q?%ff%00%22", b"\x7e\x80", b"\"\\\xff"),
    ]
    for target, ua, ref in cases:
        out, closed = exchange(e.port, b"GET " + target + b" HTTP/1.1\r\n"
                               b"Host: a\r\nUser-Agent: " + ua + b"\r\n"
                               b"Referer: " + ref + b"\r\n"
                               b"Connection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 200 "), out
    # Raw bytes past 0x7f in the target (if the parser lets them through,
    # they are logged like header bytes), and requests refused for a
    # control character: each still logs a line that parses.
    raw = [b"GET /x\x80\xff\xc3\xa9 HTTP/1.1\r\nHost: a\r\n",
           b"GET /x\x01y HTTP/1.1\r\nHost: a\r\n",
           b"GET /y HTTP/1.1\r\nHost: a\r\nUser-Agent: a\x01b\x1b\r\n",
           b"GET /z HTTP/1.1\r\nHost: a\r\nReferer: a\x7fb\r\n",
           b"G\x80T /w HTTP/1.1\r\nHost: a\r\n"]
    for head in raw:
        exchange(e.port, head + b"Connection: close\r\n\r\n")
    ls = lines(e, "all.json", len(cases) + len(raw))
    data = (e.prefix / "logs" / "all.json").read_bytes()
    assert max(data) < 0x80, "a byte past ASCII in the JSON log"
    objs = [json.loads(x) for x in ls]
    assert len(objs) == len(cases) + len(raw)
    for (target, ua, ref), d in zip(cases, objs):
        assert d["request"].encode("latin-1") == \
            b"GET " + target + b" HTTP/1.1"
        assert d["http_user_agent"].encode("latin-1") == ua.strip(), d
        assert d["http_referer"].encode("latin-1") == ref.strip(), d
        assert d["status"] == "200"
    first = objs[len(cases)]
    assert first["request"] is None or first["request"].encode(
        "latin-1") == b"GET /x\x80\xff\xc3\xa9 HTTP/1.1", first
    assert [d["status"] for d in objs[len(cases) + 1:]] == ["400"] * 4
    for x in ls:
        # Every control character and every byte past 0x7f is escaped
        # as \\u00xx; nothing else is.
        for m in re.finditer(r"\\u([0-9a-fA-F]{4})", x):
            c = int(m.group(1), 16)
            assert c < 0x20 or 0x7f <= c <= 0xff, x
