"""PROXY protocol on listen items (modules-2.md, "proxy_protocol"): v1 and
v2 headers (TLVs, AWS 0xEA, LOCAL, CRC32C) before HTTP and before TLS,
$proxy_protocol_* variables, and connections closed without a response
for missing, malformed, oversized, truncated or late headers (logged at
info, counted); `-t` refuses an address used both ways."""

import re
import socket
import ssl
import struct
import time

import pytest

from conftest import (check_config_error, read_response, split_response,
                      wait_for)
from tlsutil import OPENSSL, pki  # noqa: F401 (a fixture)

SIG = b"\r\n\r\n\x00\r\nQUIT\n"

BODY = ("a=$proxy_protocol_addr p=$proxy_protocol_port "
        "sa=$proxy_protocol_server_addr sp=$proxy_protocol_server_port "
        "r=$remote_addr rr=$realip_remote_addr "
        "alpn=$proxy_protocol_tlv_alpn vpce=$proxy_protocol_tlv_aws_vpce_id "
        "ea=$proxy_protocol_tlv_0xea cn=$proxy_protocol_tlv_ssl_cn\\n")

CONFIG = """
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen:
      - {address: "127.0.0.1:{port0}", proxy_protocol: true}
    client_header_timeout: 1s
    locations:
      /:
        return: {status: 200, body: "%s"}
  - listen: "127.0.0.1:{port1}"
    locations:
      /status:
        status: json
""" % BODY

REQ = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 & -(crc & 1))
    return crc ^ 0xffffffff


def tlv(t, value):
    return struct.pack("!BH", t, len(value)) + value


def v2(cmd=1, fam=0x11, addr=None, tlvs=b"", crc=False):
    """A v2 header: cmd 1 PROXY / 0 LOCAL, fam 0x11 TCP4, 0x21 TCP6."""
    if addr is None:
        addr = (socket.inet_aton("198.18.1.1") + socket.inet_aton("10.1.2.3")
                + struct.pack("!HH", 40312, 443)) if fam == 0x11 else b""
    body = addr + tlvs
    if crc:
        body += tlv(0x03, b"\0\0\0\0")
    head = SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H", len(body))
    whole = head + body
    if crc:
        c = crc32c(whole)
        whole = whole[:-4] + struct.pack("!I", c)
    return whole


def exchange(port, data, timeout=3.0, pause=None):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            if pause is None:
                s.sendall(data)
            else:
                for piece in data:
                    s.sendall(piece)
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            return b""
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()


def body_of(data):
    status, _, body = split_response(data)
    assert status == 200, data
    return body.decode()


def test_v1_tcp4_and_tcp6(eddy):
    e = eddy(CONFIG, ports=2)
    b = body_of(exchange(e.port, b"PROXY TCP4 198.18.1.1 10.1.2.3 40312 443"
                                 b"\r\n" + REQ))
    assert b.startswith("a=198.18.1.1 p=40312 sa=10.1.2.3 sp=443 "
                        "r=127.0.0.1 rr=127.0.0.1 ")
    b = body_of(exchange(e.port, b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535"
                                 b"\r\n" + REQ))
    assert b.startswith("a=2001:db8::1 p=1 sa=2001:db8::2 sp=65535 ")
    # Byte by byte: the header and the request each trickle in.
    b = body_of(exchange(e.port, [bytes([c]) for c in
                                  b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"]
                         + [REQ], pause=0.005))
    assert b.startswith("a=1.2.3.4 p=1 sa=5.6.7.8 sp=2 ")


def test_header_holds_for_every_request_of_the_connection(eddy):
    e = eddy(CONFIG, ports=2)
    one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    out = exchange(e.port, b"PROXY TCP4 198.18.1.1 10.1.2.3 40312 443\r\n"
                   + one + REQ)
    assert out.count(b"a=198.18.1.1 p=40312 ") == 2, out
    # A second header on the same connection is a malformed request.
    out = exchange(e.port, b"PROXY TCP4 198.18.1.1 10.1.2.3 40312 443\r\n"
                   + one + b"PROXY TCP4 1.1.1.1 1.1.1.1 1 1\r\n" + REQ)
    assert out.count(b"a=198.18.1.1 ") == 1 and b" 400 " in out, out


def test_v1_unknown_and_v2_local_keep_socket(eddy):
    e = eddy(CONFIG, ports=2)
    for hdr in (b"PROXY UNKNOWN\r\n",
                b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
                v2(cmd=0, fam=0x00),
                v2(cmd=0, fam=0x11),    # LOCAL with addresses: ignored
                v2(cmd=1, fam=0x00)):   # AF_UNSPEC
        b = body_of(exchange(e.port, hdr + REQ))
        assert b.startswith("a= p= sa= sp= r=127.0.0.1 rr=127.0.0.1 "), hdr


def test_v2_tcp4_tcp6_tlvs(eddy):
    e = eddy(CONFIG, ports=2)
    ssl_tlv = tlv(0x20, b"\x01" + b"\0\0\0\0" + tlv(0x21, b"TLSv1.3")
                  + tlv(0x22, b"client.example"))
    tlvs = (tlv(0x01, b"h2") + tlv(0xea, b"\x01vpce-0abc")
            + ssl_tlv + tlv(0x04, b""))
    b = body_of(exchange(e.port, v2(tlvs=tlvs, crc=True) + REQ))
    assert b == ("a=198.18.1.1 p=40312 sa=10.1.2.3 sp=443 r=127.0.0.1 "
                 "rr=127.0.0.1 alpn=h2 vpce=vpce-0abc ea=\x01vpce-0abc "
                 "cn=client.example\n")
    addr6 = (socket.inet_pton(socket.AF_INET6, "2001:db8::7")
             + socket.inet_pton(socket.AF_INET6, "::1")
             + struct.pack("!HH", 8080, 80))
    b = body_of(exchange(e.port, v2(fam=0x21, addr=addr6) + REQ))
    assert b.startswith("a=2001:db8::7 p=8080 sa=::1 sp=80 ")
    # The whole 4 KiB allowed.
    big = tlv(0x05, b"u" * (4096 - 12 - 3))
    b = body_of(exchange(e.port, v2(tlvs=big) + REQ))
    assert b.startswith("a=198.18.1.1 ")


def assert_closed_silently(e, data, pause=None, timeout=3.0):
    out = exchange(e.port, data, timeout=timeout, pause=pause)
    assert out == b"", out


BROKEN = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                  # missing
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + REQ,              # no CR
    b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n" + REQ,           # two spaces
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n" + REQ,        # port
    b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n" + REQ,                # family
    b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n" + REQ,
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n" + REQ,
    b"PROXY UNKNOWN" + b" " * 100 + b"\r\n" + REQ,          # over 107
    b"PROXY " + b"x" * 200,                                 # oversized
    SIG + b"\x31\x11\x00\x0c" + b"\0" * 12 + REQ,           # version 3
    SIG + b"\x22\x11\x00\x0c" + b"\0" * 12 + REQ,           # command 2
    v2(fam=0x11, addr=b"\0" * 8) + REQ,                     # short address
    v2(tlvs=tlv(0x01, b"h2")[:-1] + b"\x01\x00\x09") + REQ,  # TLV overruns
    v2(tlvs=b"\x01\x00") + REQ,                             # half a TLV
    SIG + b"\x21\x11\x10\x01" + b"\0" * 100,                # over 4 KiB
    b"\x16\x03\x01\x00\x05hello",                            # garbage
]


def pp_errors(e):
    status, _, body = split_response(
        exchange(e.ports[1], b"GET /status HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n"))
    assert status == 200
    return int(re.search(rb'"proxy_protocol_errors":(\d+)', body).group(1))


def test_broken_headers_closed_without_response(eddy):
    e = eddy(CONFIG, ports=2)
    # The start-up probe connected and closed without a header.
    wait_for(lambda: pp_errors(e) == 1, 3)
    before = pp_errors(e)
    for data in BROKEN:
        assert_closed_silently(e, data)
    # A bad CRC32C.
    good = v2(crc=True)
    bad = good[:-1] + bytes([good[-1] ^ 1])
    assert_closed_silently(e, bad + REQ)
    assert body_of(exchange(e.port, good + REQ)).startswith("a=198.18.1.1 ")
    assert re.search(r"\[info\] .*broken PROXY protocol header from "
                     r"127\.0\.0\.1:\d+", e.error_log)
    assert pp_errors(e) - before == len(BROKEN) + 1


def test_truncated_and_slow_headers_closed(eddy):
    e = eddy(CONFIG, ports=2)
    t0 = time.monotonic()
    # Truncated: the peer stops sending; client_header_timeout (1s) ends it.
    assert_closed_silently(e, b"PROXY TCP4 1.2.3.4", timeout=5)
    assert_closed_silently(e, v2()[:20], timeout=5)
    # Slow: a byte every 0.3 s never completes within the timeout.
    assert_closed_silently(e, [bytes([c]) for c in
                               b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"],
                           pause=0.3, timeout=5)
    assert time.monotonic() - t0 < 15
    assert wait_for(lambda: "timed out" in e.error_log, 5)
    # The peer closing half way: closed too, logged.
    s = socket.create_connection(("127.0.0.1", e.port), timeout=3)
    s.sendall(b"PROXY TCP4 ")
    s.shutdown(socket.SHUT_WR)
    assert s.recv(100) == b""
    s.close()


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command is needed")
def test_tls_after_proxy_header(eddy, pki):
    e = eddy("""
        workers: 1
        error_log: {path: logs/error.log, level: info}
        servers:
          - listen:
              - {address: "127.0.0.1:{port}", proxy_protocol: true}
            tls: {certificate: certs/default.pem, key: certs/default.key}
            locations:
              /:
                return: {status: 200, body: "$scheme $proxy_protocol_addr\\n"}
    """, start=False)
    e.write_file("certs/default.pem", (pki.root / "default.pem").read_bytes())
    e.write_file("certs/default.key", (pki.root / "default.key").read_bytes())
    e.start()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    ctx.check_hostname = False
    for hdr in (b"PROXY TCP4 198.18.7.7 10.0.0.1 5555 443\r\n", v2(),
                v2(cmd=0, fam=0)):
        raw = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        raw.sendall(hdr)
        s = ctx.wrap_socket(raw)
        s.sendall(REQ)
        status, _, body = split_response(read_response(s))
        s.close()
        assert status == 200
        want = {v2(): b"https 198.18.1.1\n",
                v2(cmd=0, fam=0): b"https \n"}.get(hdr, b"https 198.18.7.7\n")
        assert body == want, body
    # The header and the ClientHello in one segment.
    raw = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    raw.sendall(v2() + outb.read())
    while True:
        data = raw.recv(65536)
        assert data, "closed during the handshake"
        inb.write(data)
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
    obj.write(REQ)
    raw.sendall(outb.read())
    got = b""
    while True:
        data = raw.recv(65536)
        if not data:
            break
        inb.write(data)
        try:
            got += obj.read(65536)
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
    raw.close()
    assert b"200 OK" in got and b"https 198.18.1.1\n" in got, got
    # TLS without the header: closed before any handshake byte.
    raw = socket.create_connection(("127.0.0.1", e.port), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        ctx.wrap_socket(raw)
    raw.close()


def test_address_mixed_is_refused(prefix):
    check_config_error(prefix, """
        servers:
          - listen: [{address: 8080, proxy_protocol: true}]
          - listen: [8080]
        """, "8080]", r"used both with and without proxy_protocol")
