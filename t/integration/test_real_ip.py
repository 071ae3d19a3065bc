"""The real_ip module (modules-2.md, "real_ip"): a trusted peer's
X-Forwarded-For (or another header, or the PROXY header) sets
$remote_addr for access, logs and X-Real-IP; an untrusted peer's is
ignored; the recursive walk over several hops; $realip_remote_addr keeps
the peer; X-Forwarded-For upstream gets the peer appended; `-t` errors
with their positions."""

import re
import socket
import struct

from conftest import check_config_error, split_response, wait_for

BODY = "r=$remote_addr p=$remote_port rr=$realip_remote_addr\\n"


def get(port, headers=b"", path="/", pre=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(pre + b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  + headers + b"Connection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    return split_response(data)


def body(port, headers=b"", path="/", pre=b""):
    status, _, b = get(port, headers, path, pre)
    assert status == 200, (status, b)
    return b.decode()


CONFIG = """
workers: 1
error_log: {path: logs/error.log, level: info}
real_ip: {from: [127.0.0.1, 10.0.0.0/8]}
servers:
  - listen: 127.0.0.1:{port0}
    access_log: {path: logs/access.log, format: combined}
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
      /deny:
        access: [{deny: 203.0.113.0/24}, {allow: all}]
        return: {status: 200, body: "in\\n"}
      /up:
        proxy: {pass: "http://127.0.0.1:{port3}"}
      /limited:
        limit_req: {rate: 1r/m}
        return: {status: 200, body: "ok\n"}
  - listen: 127.0.0.1:{port1}
    real_ip: {from: [10.0.0.0/8, "fd00::/8"]}
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
  - listen: 127.0.0.1:{port2}
    real_ip: {from: [127.0.0.0/8], header: X-Real-IP, recursive: false}
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
  - listen: 127.0.0.1:{port3}
    real_ip: off
    locations:
      /:
        return: {status: 200, body: "xff=$http_x_forwarded_for xri=$http_x_real_ip r=$remote_addr\\n"}
  - listen: 127.0.0.1:{port4}
    real_ip: {from: [127.0.0.1], recursive: false}
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
""" % {"body": BODY}


def test_trusted_xff_sets_remote_addr(eddy):
    e = eddy(CONFIG, ports=5)
    assert body(e.port, b"X-Forwarded-For: 203.0.113.9\r\n") == \
        "r=203.0.113.9 p= rr=127.0.0.1\n"
    # Without the header, and with one that is not an address: the peer.
    b = body(e.port)
    assert re.match(r"r=127\.0\.0\.1 p=\d+ rr=127\.0\.0\.1\n$", b), b
    assert body(e.port, b"X-Forwarded-For: unknown\r\n").startswith(
        "r=127.0.0.1 ")
    assert body(e.port, b"X-Forwarded-For: 203.0.113.9:80\r\n").startswith(
        "r=127.0.0.1 ")
    assert body(e.port, b"X-Forwarded-For: 2001:db8::5\r\n").startswith(
        "r=2001:db8::5 p= ")
    # access decides by the client, and the log names it.
    status, _, _ = get(e.port, b"X-Forwarded-For: 203.0.113.9\r\n", "/deny")
    assert status == 403
    status, _, _ = get(e.port, b"X-Forwarded-For: 198.51.100.1\r\n", "/deny")
    assert status == 200
    status, _, _ = get(e.port, b"", "/deny")
    assert status == 200
    log = wait_for(lambda: "198.51.100.1 - -" in e.log_text("logs/access.log")
                   and e.log_text("logs/access.log"), 5)
    assert re.search(r"^203\.0\.113\.9 - - .*\"GET /deny HTTP/1\.1\" 403",
                     log, re.M), log
    assert re.search(r"access forbidden by rule 1 .*client: 203\.0\.113\.9",
                     e.error_log)


def test_untrusted_peer_is_ignored(eddy):
    e = eddy(CONFIG, ports=5)
    b = body(e.ports[1], b"X-Forwarded-For: 203.0.113.9\r\n")
    assert b.startswith("r=127.0.0.1 p=") and b.endswith(" rr=127.0.0.1\n")


def test_recursive_walk_over_three_hops(eddy):
    e = eddy(CONFIG, ports=5)
    # client -> 10.1.1.1 -> 10.2.2.2 -> 127.0.0.1 (eddy's peer).
    xff = b"X-Forwarded-For: 203.0.113.5, 10.1.1.1\r\n" \
          b"X-Forwarded-For: 10.2.2.2\r\n"
    assert body(e.port, xff).startswith("r=203.0.113.5 ")
    # A client claiming an address itself: the rightmost untrusted wins.
    xff = b"X-Forwarded-For: 1.1.1.1, 203.0.113.5, 10.1.1.1, 10.2.2.2\r\n"
    assert body(e.port, xff).startswith("r=203.0.113.5 ")
    # Every hop trusted: the leftmost.
    assert body(e.port, b"X-Forwarded-For: 10.9.9.9, 10.1.1.1\r\n"
                ).startswith("r=10.9.9.9 ")
    # Garbage on the way: the peer stays.
    assert body(e.port, b"X-Forwarded-For: 203.0.113.5, junk, 10.1.1.1\r\n"
                ).startswith("r=127.0.0.1 ")
    # recursive: false: the last one, trusted or not.
    assert body(e.ports[4], b"X-Forwarded-For: 203.0.113.5, 10.1.1.1\r\n"
                ).startswith("r=10.1.1.1 ")


def test_limit_req_key_follows(eddy):
    e = eddy(CONFIG, ports=5)
    for ip in (b"203.0.113.1", b"203.0.113.2", b"203.0.113.3"):
        status, _, _ = get(e.port, b"X-Forwarded-For: " + ip + b"\r\n",
                           "/limited")
        assert status == 200
    status, _, _ = get(e.port, b"X-Forwarded-For: 203.0.113.2\r\n",
                       "/limited")
    assert status == 429


def test_other_header(eddy):
    e = eddy(CONFIG, ports=5)
    assert body(e.ports[2], b"X-Real-IP: 192.0.2.44\r\n"
                b"X-Forwarded-For: 203.0.113.5\r\n").startswith(
        "r=192.0.2.44 ")
    assert body(e.ports[2], b"X-Real-IP: 192.0.2.44, 192.0.2.45\r\n"
                ).startswith("r=127.0.0.1 ")


def test_proxy_gets_client_and_peer(eddy):
    e = eddy(CONFIG, ports=5)
    b = body(e.port, b"X-Forwarded-For: 203.0.113.5\r\n", "/up")
    # X-Real-IP: the client; X-Forwarded-For: the peer appended (not the
    # client a second time).
    assert b == "xff=203.0.113.5, 127.0.0.1 xri=203.0.113.5 r=127.0.0.1\n"


SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_tcp4(src, sport):
    body = (socket.inet_aton(src) + socket.inet_aton("10.0.0.1")
            + struct.pack("!HH", sport, 443))
    return SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def test_proxy_protocol_header(eddy):
    e = eddy("""
        workers: 1
        error_log: {path: logs/error.log, level: info}
        servers:
          - listen: [{address: "127.0.0.1:{port0}", proxy_protocol: true}]
            real_ip: {from: [127.0.0.1], header: proxy_protocol}
            locations:
              /:
                return: {status: 200, body: "%s"}
              /deny:
                access: [{deny: 198.18.0.0/16}, {allow: all}]
                return: {status: 200, body: "in\\n"}
          - listen: [{address: "127.0.0.1:{port1}", proxy_protocol: true}]
            real_ip: {from: [10.0.0.0/8], header: proxy_protocol}
            locations:
              /:
                return: {status: 200, body: "%s"}
    """ % (BODY, BODY), ports=2)
    pre = b"PROXY TCP4 198.18.3.4 10.0.0.1 40312 443\r\n"
    assert body(e.port, b"X-Forwarded-For: 1.2.3.4\r\n", pre=pre) == \
        "r=198.18.3.4 p=40312 rr=127.0.0.1\n"
    assert body(e.port, pre=v2_tcp4("198.18.9.9", 555)) == \
        "r=198.18.9.9 p=555 rr=127.0.0.1\n"
    status, _, _ = get(e.port, path="/deny", pre=pre)
    assert status == 403
    # LOCAL: the socket's address.
    assert body(e.port, pre=SIG + b"\x20\x00\x00\x00").startswith(
        "r=127.0.0.1 ")
    # An untrusted balancer: the peer, whatever its header says.
    assert body(e.ports[1], pre=pre).startswith("r=127.0.0.1 ")


def test_config_errors(prefix):
    check_config_error(prefix, """
        real_ip: {from: []}
        servers:
          - listen: {port}
        """, "[]", r"empty \"from\"")
    check_config_error(prefix, """
        real_ip: {from: [10.0.0.0/33]}
        servers:
          - listen: {port}
        """, "10.0.0.0/33", r"invalid address \"10\.0\.0\.0/33\" in real_ip")
    check_config_error(prefix, """
        real_ip: {from: [10.0.0.0/8], header: "X Forwarded"}
        servers:
          - listen: {port}
        """, "\"X Forwarded\"", r"header name \(a token\)")
    check_config_error(prefix, """
        real_ip: {header: X-Real-IP}
        servers:
          - listen: {port}
        """, "{header", r"\"from\" is required")
    check_config_error(prefix, """
        servers:
          - listen: {port}
            real_ip: {from: [10.0.0.0/8], header: proxy_protocol}
          - listen: [{address: 1, proxy_protocol: true}]
            real_ip: {from: [10.0.0.0/8], header: proxy_protocol}
        """, "proxy_protocol}", r"real_ip header \"proxy_protocol\" in "
        r"server #1, which has no listen address with proxy_protocol")
    check_config_error(prefix, """
        servers:
          - listen: {port}
            locations:
              /:
                real_ip: {from: [10.0.0.0/8]}
        """, "real_ip", r"real_ip")
