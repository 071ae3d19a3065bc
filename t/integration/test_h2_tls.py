"""HTTP/2 over TLS (spec/http2.md): ALPN h2 then http/1.1 on TLS
listeners by default, http/1.1 for `http2: false`, for a TLS 1.2 suite
RFC 9113 9.2 forbids and without ALPN; 421 for an authority whose server
has another certificate; $http2 is h2."""

import ssl

import pytest

from h2util import H2, connect, tls_context
from tlsutil import pki  # noqa: F401 (a fixture)

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port0}"}, {address: "127.0.0.1:{port1}", http2: false}]
    names: [default.test]
    tls:
      certificate: certs/default.pem
      key: certs/default.key
      ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA"
    locations:
      /:
        return: {status: 200, body: "$server_name $server_protocol $http2 $scheme\n"}
  - listen: [{address: "127.0.0.1:{port0}"}]
    names: [a.test]
    tls: {certificate: certs/a.pem, key: certs/a.key}
    locations:
      /:
        return: {status: 200, body: "a\n"}
"""


@pytest.fixture
def srv(eddy, pki):  # noqa: F811
    e = eddy(CONFIG, ports=2, start=False)
    for n in ("default", "a"):
        e.write_file("certs/%s.pem" % n, (pki.root / (n + ".pem")).read_bytes())
        e.write_file("certs/%s.key" % n, (pki.root / (n + ".key")).read_bytes())
    return e.start()


def alpn(port, ctx, sni="default.test"):
    s = connect(port, ctx, sni)
    p = s.selected_alpn_protocol()
    s.close()
    return p


def test_alpn_h2_then_http11(srv):
    assert alpn(srv.port, tls_context()) == "h2"
    assert alpn(srv.port, tls_context(alpn=("http/1.1",))) == "http/1.1"
    assert alpn(srv.port, tls_context(alpn=None)) is None


def test_http2_false_offers_http11_only(srv):
    port1 = int(srv.format("{port1}"))
    assert alpn(port1, tls_context()) == "http/1.1"


def test_tls12_cbc_suite_gets_http11(srv):
    ctx = tls_context(ciphers="ECDHE-ECDSA-AES128-SHA",
                      max_version=ssl.TLSVersion.TLSv1_2)
    assert alpn(srv.port, ctx) == "http/1.1"
    ctx = tls_context(ciphers="ECDHE-ECDSA-AES128-GCM-SHA256",
                      max_version=ssl.TLSVersion.TLSv1_2)
    assert alpn(srv.port, ctx) == "h2"


def test_h2_request_over_tls(srv):
    c = H2(srv.port, tls=tls_context(), sni="default.test")
    st = c.get("/", authority="default.test", scheme="https")
    assert st.status == 200
    assert st.body == b"default.test HTTP/2.0 h2 https\n"
    c.close()


def test_misdirected_421(srv):
    c = H2(srv.port, tls=tls_context(), sni="default.test")
    st = c.get("/", authority="a.test", scheme="https")
    assert st.status == 421
    st = c.get("/", authority="default.test", scheme="https")
    assert st.status == 200
    c.close()
    c = H2(srv.port, tls=tls_context(), sni="a.test")
    st = c.get("/", authority="a.test", scheme="https")
    assert st.status == 200 and st.body == b"a\n"
    c.close()


class RecordSock:
    """TLS through memory BIOs on a plain socket, for H2(sock=...): the
    lengths of the TLS records the server sends are kept."""

    def __init__(self, port, timeout=5.0):
        self.raw = connect(port, None, None, timeout)
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = tls_context(alpn=("h2",)).wrap_bio(
            self.inb, self.outb, server_hostname="default.test")
        self.pending = b""
        self.records = []
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._out()
                if not self._in():
                    raise ConnectionError("closed in the handshake")
        self._out()

    def _out(self):
        data = self.outb.read()
        if data:
            self.raw.sendall(data)

    def _in(self):
        data = self.raw.recv(65536)
        if not data:
            return False
        self.pending += data
        while len(self.pending) >= 5:
            n = int.from_bytes(self.pending[3:5], "big")
            if len(self.pending) < 5 + n:
                break
            self.records.append(n)
            self.pending = self.pending[5 + n:]
        self.inb.write(data)
        return True

    def settimeout(self, t):
        self.raw.settimeout(t)

    def sendall(self, data):
        self.tls.write(data)
        self._out()

    def recv(self, n):
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                if not self._in():
                    return b""

    def close(self):
        self.raw.close()


STATIC = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port}"}]
    tls: {certificate: certs/default.pem, key: certs/default.key}
    root: html
"""


def test_data_frames_fill_tls_records(eddy, pki):  # noqa: F811
    """A file's DATA frames leave in full TLS records: a frame header is
    not a record of its own before each piece of the file (60000 bytes:
    4 records, not 9)."""
    e = eddy(STATIC, start=False)
    e.write_file("certs/default.pem", (pki.root / "default.pem").read_bytes())
    e.write_file("certs/default.key", (pki.root / "default.key").read_bytes())
    body = bytes(range(256)) * 234 + b"x" * 96
    e.write_file("html/f.bin", body)
    e.start()
    s = RecordSock(e.port)
    c = H2(e.port, sock=s)
    for _ in range(3):
        c.recv(0.2)     # SETTINGS, their ACKs, session tickets
    before = len(s.records)
    r = c.get("/f.bin", authority="default.test", scheme="https")
    assert r.status == 200 and r.body == body
    sizes = s.records[before:]
    assert sum(sizes) > 60000
    assert len(sizes) <= 5, sizes
    c.close()
