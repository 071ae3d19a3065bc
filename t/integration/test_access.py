"""The access module (config.md, inheritable `access`): first matching
rule wins, default allow, 403 for a denied client, IPv4 and IPv6 peers,
unix-socket peers, inheritance, and config errors with positions."""

import re
import socket

import pytest

from conftest import check_config_error, split_response


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def get(port, path, family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    return split_response(data)


CONFIG = """
workers: 1
error_log: logs/error.log
access: [{deny: 192.0.2.1}]
servers:
  - listen: [127.0.0.1:{port}, "[::1]:{port}"]
    locations:
      = /v4-denied:
        access:
          - deny: 127.0.0.1/32
          - allow: all
        return: {status: 200, body: "in\\n"}
      = /only-v6:
        access: [{allow: "::1"}, {deny: all}]
        return: {status: 200, body: "v6\\n"}
      = /first-wins:
        access: [{allow: 127.0.0.0/8}, {deny: 127.0.0.1}]
        return: {status: 200, body: "first\\n"}
      = /net:
        access: [{deny: "fd00::/8"}, {deny: 10.0.0.0/8}]
        return: {status: 200, body: "no match\\n"}
      = /inherit:
        return: {status: 200, body: "main rules\\n"}
      = /nohandler:
        access: [{deny: all}]
"""


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback")
def test_allow_deny_by_family(eddy):
    e = eddy(CONFIG)
    status, h, body = get(e.port, "/v4-denied")
    assert status == 403 and b"403 Forbidden" in body
    status, _, body = get(e.port, "/v4-denied", socket.AF_INET6, "::1")
    assert status == 200 and body == b"in\n"
    status, _, _ = get(e.port, "/only-v6")
    assert status == 403
    status, _, body = get(e.port, "/only-v6", socket.AF_INET6, "::1")
    assert status == 200 and body == b"v6\n"
    assert re.search(r'access forbidden by rule 1 of location "= /v4-denied", '
                     r"client: 127\.0\.0\.1, server: ", e.error_log)


def test_first_match_default_allow_inherit(eddy):
    e = eddy(CONFIG.replace(', "[::1]:{port}"', ""))
    status, _, body = get(e.port, "/first-wins")
    assert status == 200 and body == b"first\n"
    status, _, body = get(e.port, "/net")
    assert status == 200 and body == b"no match\n"
    status, _, body = get(e.port, "/inherit")
    assert status == 200 and body == b"main rules\n"
    # Denied before the missing handler would answer 404.
    status, _, _ = get(e.port, "/nohandler")
    assert status == 403


def test_inherited_deny_and_keepalive(eddy):
    e = eddy("""
        workers: 1
        access: [{allow: 10.0.0.0/8}, {deny: all}]
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /open/:
                access: [{allow: all}]
                return: {status: 200, body: "open\\n"}
              /:
                return: {status: 200, body: "closed\\n"}
        """)
    s = e.connect()
    s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"
              b"GET /open/ HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    # A 403 keeps the connection: the next request is answered.
    first, _, rest = data.partition(b"</html>\n")
    assert first.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    status, _, body = split_response(rest)
    assert status == 200 and body == b"open\n"


def test_unix_peer_matches_only_all(eddy, tmp_path):
    sock = tmp_path / "eddy.sock"
    e = eddy("""
        workers: 1
        servers:
          - listen: [127.0.0.1:{port}, "unix:%s"]
            locations:
              = /a:
                access: [{allow: 127.0.0.1}, {deny: all}]
                return: {status: 200, body: "a\\n"}
              = /b:
                access: [{deny: 0.0.0.0/0}, {deny: "::/0"}]
                return: {status: 200, body: "b\\n"}
        """ % sock)

    def unix_get(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(str(sock))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        return split_response(data)

    assert unix_get("/a")[0] == 403
    assert unix_get("/b")[0] == 200
    assert get(e.port, "/a")[0] == 200
    assert get(e.port, "/b")[0] == 403



@pytest.mark.parametrize("rules,needle,pattern", [
    ("[{allow: 10.0.0.0/33}]", "10.0.0.0/33", r"prefix length.*/32"),
    ('[{deny: "::1/200"}]', '"::1/200"', r"prefix length.*/128"),
    ("[{deny: 300.1.1.1}]", "300.1.1.1", r'invalid address "300.1.1.1"'),
    ("[{deny: example.com}]", "example.com", r"CIDR block or \"all\""),
    ("[{permit: all}]", "permit", r'unknown key "permit" in access'),
    ("[{allow: all, deny: all}]", "{allow", r"expected \{allow"),
    ("{allow: all}", "{allow", r"expected a list"),
    ("[{allow: [1.2.3.4]}]", "[1.2.3.4]", r"CIDR block or \"all\""),
])
def test_config_errors(tmp_path, rules, needle, pattern):
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                access: %s
                return: 204
        """ % rules, needle, pattern)
