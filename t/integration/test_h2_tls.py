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
