"""The error log's request context (process.md "Files"): every line
written while serving a request ends with ", client: ADDR, server: NAME,
request: "LINE"", then ", upstream: "URL"" and ", host: "HOST"" when
known; what the client sent is escaped (\\xHH) so that it can never end a
field or forge a line; lines are bounded."""

import os
import re
import shutil
import socket
import tempfile

from conftest import free_port, wait_for
from httputil import get, request

HEAD = r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[%s\] \d+#\d+: "


def conf(text, **ports):
    for k, v in ports.items():
        text = text.replace("@%s@" % k, str(v))
    return text


CONFIG = r"""
workers: 1
error_log: logs/error.log
upstreams:
  app:
    servers:
      - {address: "127.0.0.1:@A@", max_fails: 1, fail_timeout: 30s}
      - {address: "127.0.0.1:@B@", max_fails: 1, fail_timeout: 30s}
servers:
  - listen: 127.0.0.1:{port}
    names: [logs.test, other.test]
    root: html
    locations:
      /slow/:
        proxy: {pass: "http://127.0.0.1:@S@", read_timeout: 300ms}
      /base/:
        proxy: {pass: "http://127.0.0.1:@S@/up/", read_timeout: 300ms}
      /dead/:
        proxy: {pass: app}
      /deny/:
        access: [{allow: 10.0.0.0/8}, {deny: all}]
        return: 200
      /files/:
        static: {}
      /cyc/:
        static: {try_files: [$uri, "/cyc$uri"]}
"""


class Silent:
    """A listener that never accepts: connections complete in its
    backlog, requests get no answer."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.sock.close()


def start(eddy, silent_port):
    a, b = free_port(), free_port()
    while b == a:
        b = free_port()
    e = eddy(conf(CONFIG, A=a, B=b, S=silent_port))
    e.dead = (a, b)
    return e


def send(e, raw):
    r, _, _ = request(e.port, raw)
    return r


def find(e, pattern):
    """The error log line matching pattern (a regex of a whole line)."""
    rx = re.compile(pattern, re.M)
    m = wait_for(lambda: rx.search(e.error_log), 5)
    assert m, "no line matching %r in:\n%s" % (pattern, e.error_log)
    return m.group(0)


def test_regress_upstream_timeout_has_context(eddy):
    with Silent() as s:
        e = start(eddy, s.port)
        r = send(e, get("/slow/a?q=1", host="logs.test:8080", close=True))
        assert r.status == 504
        find(e, HEAD % "error" + re.escape(
            'upstream timed out while reading from 127.0.0.1:%d '
            '(upstream "127.0.0.1:%d"), client: 127.0.0.1, server: '
            'logs.test, request: "GET /slow/a?q=1 HTTP/1.1", upstream: '
            '"http://127.0.0.1:%d/slow/a?q=1", host: "logs.test:8080"'
            % (s.port, s.port, s.port)) + "$")
        # The upstream URL has the target as sent (the pass's path).
        r = send(e, get("/base/b/c", host="other.test", close=True))
        assert r.status == 504
        find(e, HEAD % "error" + re.escape(
            'upstream timed out while reading from 127.0.0.1:%d '
            '(upstream "127.0.0.1:%d"), client: 127.0.0.1, server: '
            'logs.test, request: "GET /base/b/c HTTP/1.1", upstream: '
            '"http://127.0.0.1:%d/up/b/c", host: "other.test"'
            % (s.port, s.port, s.port)) + "$")


def test_regress_no_live_upstreams_has_context(eddy):
    with Silent() as s:
        e = start(eddy, s.port)
        a, b = e.dead
        # Both servers refuse: each attempt is logged with its server.
        assert send(e, get("/dead/1", host="logs.test", close=True)).status \
            == 502
        for port in (a, b):
            find(e, HEAD % "error" + re.escape(
                'connect() to 127.0.0.1:%d failed (upstream "app") (111: '
                'Connection refused), client: 127.0.0.1, server: '
                'logs.test, request: "GET /dead/1 HTTP/1.1", upstream: '
                '"http://127.0.0.1:%d/dead/1", host: "logs.test"'
                % (port, port)) + "$")
            find(e, HEAD % "warn" + re.escape(
                'upstream "app" server 127.0.0.1:%d temporarily disabled '
                'for 30000ms after 1 failure(s), client: 127.0.0.1, server: '
                'logs.test, request: "GET /dead/1 HTTP/1.1", upstream: '
                '"http://127.0.0.1:%d/dead/1", host: "logs.test"'
                % (port, port)) + "$")
        # Both are now down: no server is tried, the group is named.
        assert send(e, get("/dead/2?x=y", host="logs.test",
                           close=True)).status == 502
        find(e, HEAD % "error" + re.escape(
            'no live upstreams in "app", client: 127.0.0.1, server: '
            'logs.test, request: "GET /dead/2?x=y HTTP/1.1", upstream: '
            '"http://app/dead/2?x=y", host: "logs.test"') + "$")


def test_regress_static_open_failure_has_context(eddy):
    with Silent() as s:
        e = start(eddy, s.port)
    # open() of a socket file fails with ENXIO: a 500, logged. The socket
    # lives in a short directory (sun_path is small), reached through a
    # symbolic link (followed by default).
    (e.prefix / "html" / "files").mkdir(parents=True)
    path = e.prefix / "html" / "files" / "sock"
    d = tempfile.mkdtemp(prefix="edlog")
    us = socket.socket(socket.AF_UNIX)
    try:
        us.bind(os.path.join(d, "s"))
        os.symlink(os.path.join(d, "s"), str(path))
        r = send(e, get("/files/sock", host="logs.test", close=True))
        assert r.status == 500
    finally:
        us.close()
        shutil.rmtree(d)
    find(e, HEAD % "error" + re.escape(
        'open() "%s" failed (6: No such device or address), client: '
        '127.0.0.1, server: logs.test, request: "GET /files/sock '
        'HTTP/1.1", host: "logs.test"' % path) + "$")


def test_regress_access_deny_has_context(eddy):
    with Silent() as s:
        e = start(eddy, s.port)
    r = send(e, get("/deny/x", host="logs.test", close=True))
    assert r.status == 403
    find(e, HEAD % "error" + re.escape(
        'access forbidden by rule 2 of location "/deny/", client: '
        '127.0.0.1, server: logs.test, request: "GET /deny/x HTTP/1.1", '
        'host: "logs.test"') + "$")
    # HTTP/1.0 without Host: no host field.
    r = send(e, b"GET /deny/y HTTP/1.0\r\n\r\n")
    assert r.status == 403
    find(e, HEAD % "error" + re.escape(
        'access forbidden by rule 2 of location "/deny/", client: '
        '127.0.0.1, server: logs.test, request: "GET /deny/y HTTP/1.0"')
        + "$")


def test_regress_client_bytes_escaped_in_log(eddy):
    with Silent() as s:
        e = start(eddy, s.port)
    # Decoded from %XX: a quote, LF, CR and a byte >= 0x80 reach $uri, and
    # the redirect cycle's message quotes it.
    r = send(e, get("/cyc/%22%0A%0D%FF", host="logs.test", close=True))
    assert r.status == 500
    find(e, HEAD % "error" + re.escape(
        'rewrite or internal redirection cycle while redirecting to "'
        + "/cyc" * 12 + '/\\x22\\x0A\\x0D\\xFF", client: 127.0.0.1, '
        'server: logs.test, request: "GET /cyc/%22%0A%0D%FF HTTP/1.1", '
        'host: "logs.test"') + "$")
    # Raw in the request line: a quote, a backslash, DEL is refused by
    # the parser, bytes >= 0x80. Where the parser lets them through, the
    # log shows them escaped; nowhere are they written raw.
    for raw, shown in ((b'/deny/a"b', r'/deny/a\x22b'),
                       (b'/deny/a\\b', r'/deny/a\x5Cb'),
                       (b'/deny/\xff\xfe', r'/deny/\xFF\xFE'),
                       (b'/deny/",client:6.6.6.6',
                        r'/deny/\x22,client:6.6.6.6')):
        r = send(e, b"GET " + raw + b" HTTP/1.1\r\nHost: logs.test\r\n"
                 b"Connection: close\r\n\r\n")
        assert r.status in (400, 403), (raw, r)
        if r.status == 403:
            find(e, HEAD % "error" + re.escape(
                'access forbidden by rule 2 of location "/deny/", client: '
                '127.0.0.1, server: logs.test, request: "GET %s HTTP/1.1", '
                'host: "logs.test"' % shown) + "$")
    log = (e.prefix / "logs" / "error.log").read_bytes()
    assert b'"b' not in log and b"\\b" not in log and b"\xff" not in log
    assert b'",client' not in log
    for line in log.splitlines():
        assert all(0x20 <= c < 0x7f for c in line), line


def test_regress_log_line_bounded(eddy):
    with Silent() as s:
        e = start(eddy, s.port)
    target = "/deny/" + "x" * 6000
    r = send(e, get(target, host="logs.test", close=True))
    assert r.status == 403
    line = find(e, HEAD % "error" + r'access forbidden by rule 2 of location '
                r'"/deny/", client: 127\.0\.0\.1, server: logs\.test, '
                r'request: "GET /deny/x+\.\.\.", host: "logs\.test"$')
    assert len(line) + 1 <= 4096
    assert len(line) < len(target)
