"""Proxying to https upstreams (config.md proxy: pass https://...,
tls_verify, tls_ca, tls_server_name): verification against a CA file,
server names in SNI and in the check, failures answered 502, sessions
resumed on new connections, keep-alive pools, bodies both ways, health
checks over TLS and the configuration errors.

The backends are proxy_backend.Backend over TLS with a certificate of the
test PKI (tlsutil) for localhost and 127.0.0.1."""

import socket
import ssl
import time

import pytest

from conftest import free_port, position, run_eddy, wait_for
from proxy_backend import Backend, CLOSE, echo_handler, response
from tlsutil import OPENSSL, pki  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(OPENSSL is None,
                                reason="the openssl command is needed")


def backend_ctx(pki, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.path("localhost.pem"), pki.path("localhost.key"))
    ctx.set_alpn_protocols(["http/1.1"])
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def start(eddy, proxy, upstreams=""):
    return eddy("workers: 1\n" + upstreams + """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        proxy: %s
""" % proxy)


def closing(req, conn):
    """Answers, then closes: the next request needs a new connection."""
    return response(200, "%s %s\n" % (req.method, req.target)), CLOSE


def test_verified_by_ip_address(eddy, pki):
    with Backend(tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s}"
                  % (b.port, pki.ca))
        r = e.get("/a?b=c")
        assert r.status == 200, e.error_log
        assert r.body == b"GET /a?b=c\n"
        info = b.tls_info[0]
        # An address is never sent as SNI (RFC 6066), only checked.
        assert info["sni"] is None
        assert info["version"] == "TLSv1.3"
        assert info["alpn"] == "http/1.1"
        assert b.requests[0].header("X-Forwarded-Proto") == "http"


def test_server_name_sent_and_checked(eddy, pki):
    with Backend(tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s, "
                  "tls_server_name: localhost}" % (b.port, pki.ca))
        r = e.get("/x")
        assert r.status == 200, e.error_log
        assert b.tls_info[0]["sni"] == "localhost"


def test_unknown_ca_is_502(eddy, pki):
    # Without tls_ca the system's store is used: it does not know the
    # test root.
    with Backend(tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\"}" % b.port)
        r = e.get("/")
        assert r.status == 502
        assert b.requests == []
        assert wait_for(lambda: "certificate verify error" in e.all_logs(),
                        5), e.all_logs()
        assert "unable to get local issuer certificate" in e.all_logs()


def test_name_mismatch_is_502(eddy, pki):
    with Backend(tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s, "
                  "tls_server_name: other.test}" % (b.port, pki.ca))
        r = e.get("/")
        assert r.status == 502
        assert b.requests == []
        assert wait_for(lambda: 0 in b.tls_info, 5)
        assert "error" in b.tls_info[0]
        assert b.snis == ["other.test"]
        assert wait_for(lambda: "hostname mismatch" in e.all_logs(), 5), \
            e.all_logs()


def test_verify_off_accepts_any_certificate(eddy, pki):
    with Backend(tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_verify: false, "
                  "tls_server_name: other.test}" % b.port)
        r = e.get("/ok")
        assert r.status == 200, e.error_log
        assert r.body == b"GET /ok\n"


def test_handshake_bounded_by_connect_timeout(eddy, pki):
    # A plain HTTP server never answers the ClientHello: the handshake is
    # part of connecting, so connect_timeout (not read_timeout) ends it.
    with Backend() as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s, "
                  "connect_timeout: 500ms, read_timeout: 30s}"
                  % (b.port, pki.ca))
        t = time.monotonic()
        r = e.get("/")
        assert r.status == 504
        assert time.monotonic() - t < 5
        assert "timed out while connecting to" in e.all_logs()


@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
def test_session_resumed_on_next_connection(eddy, pki, version):
    top = ssl.TLSVersion.TLSv1_2 if version == "TLSv1.2" else None
    with Backend(closing, tls=backend_ctx(pki, top)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s}"
                  % (b.port, pki.ca))
        for i in range(3):
            r = e.get("/%d" % i)
            assert r.status == 200, e.error_log
        assert b.connections == 3
        assert [b.tls_info[i]["version"] for i in range(3)] == [version] * 3
        assert b.tls_info[0]["reused"] is False
        assert b.tls_info[1]["reused"] is True
        assert b.tls_info[2]["reused"] is True


def test_keepalive_pool_over_tls(eddy, pki):
    with Backend(tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://app\", tls_ca: %s, "
                  "tls_server_name: localhost}" % pki.ca, """
upstreams:
  app:
    keepalive: 4
    servers: [127.0.0.1:%d]
""" % b.port)
        s = e.connect()
        for i in range(5):
            s.sendall(b"GET /k%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            buf = b""
            while not buf.endswith(b"GET /k%d\n" % i):
                chunk = s.recv(65536)
                assert chunk, buf
                buf += chunk
            assert buf.startswith(b"HTTP/1.1 200 ")
        s.close()
        assert b.connections == 1
        assert len(b.requests) == 5


def test_same_group_plain_and_tls_pools_apart(eddy, pki):
    # One group passed as http:// in one location and https:// in another:
    # a TLS connection is never reused for plain requests, nor the reverse.
    with Backend(tls=backend_ctx(pki)) as tb, Backend() as pb:
        e = eddy("""
workers: 1
upstreams:
  tls_app: {keepalive: 4, servers: [127.0.0.1:%d]}
  app: {keepalive: 4, servers: [127.0.0.1:%d]}
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /s/: {proxy: {pass: "https://tls_app", tls_ca: %s}}
      /p/: {proxy: {pass: "http://app"}}
""" % (tb.port, pb.port, pki.ca))
        for path in ("/s/1", "/p/1", "/s/2", "/p/2"):
            r = e.get(path)
            assert r.status == 200, e.error_log
            assert r.body == ("GET %s\n" % path).encode()
        assert tb.connections == 1 and pb.connections == 1


def test_big_bodies_both_ways(eddy, pki):
    payload = bytes(range(256)) * 3900  # about 1 MB, under the limit
    with Backend(echo_handler, tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s}"
                  % (b.port, pki.ca))
        r = e.request("POST", "/up", body=payload, timeout=20)
        assert r.status == 200, e.error_log
        assert r.body == b"POST /up\n" + payload
        assert b.requests[0].body == payload


def test_chunked_request_body_over_tls(eddy, pki):
    with Backend(echo_handler, tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s}"
                  % (b.port, pki.ca))
        s = e.connect()
        s.sendall(b"POST /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 200 "), data
        assert data.endswith(b"POST /c\nhello world")


def test_health_checks_use_tls(eddy, pki):
    def handler(req, conn):
        if req.target == "/healthz":
            return response(200, "ok\n"), CLOSE
        return response(200, "app\n")

    with Backend(handler, tls=backend_ctx(pki)) as b:
        e = start(eddy, "{pass: \"https://app\", tls_ca: %s, "
                  "tls_server_name: localhost}" % pki.ca, """
upstreams:
  app:
    servers: [127.0.0.1:%d]
    health_check: {path: /healthz, interval: 200ms, passes: 1, fails: 1}
""" % b.port)
        assert wait_for(lambda: any(r.target == "/healthz"
                                    for r in b.requests), 5), e.error_log
        r = e.get("/")
        assert r.status == 200 and r.body == b"app\n"
        assert "down" not in e.error_log


# --------------------------------------------------------------------------
# configuration


def check_t(prefix, proxy, needle, message):
    port = free_port()
    text = ("servers:\n"
            "  - listen: 127.0.0.1:%d\n"
            "    locations:\n"
            "      /:\n"
            "        proxy: %s\n" % (port, proxy))
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, _, err = run_eddy(["-t", "-p", prefix, "-c", conf])
    assert rc == 1, err
    line, col = position(text, needle)
    assert "%s:%d:%d" % (conf, line, col) in err, err
    assert message in err, err


def test_t_missing_ca_file(prefix):
    check_t(prefix, "{pass: \"https://127.0.0.1:1\", tls_ca: nope.pem}",
            "nope.pem", "cannot load CA certificates")


def test_t_ca_file_without_certificates(prefix):
    (prefix / "conf" / "empty.pem").write_text("nothing here\n")
    check_t(prefix, "{pass: \"https://127.0.0.1:1\", tls_ca: empty.pem}",
            "empty.pem", "cannot load CA certificates")


def test_t_tls_keys_need_an_https_pass(prefix):
    check_t(prefix, "{pass: \"http://127.0.0.1:1\", tls_verify: false}",
            "false}", "applies to https upstreams only")


@pytest.mark.parametrize("name", ["a b", "api:443", "-x.test", "x-.test",
                                  "a..b", ".a", "a" * 64 + ".test"])
def test_t_bad_server_name(prefix, name):
    check_t(prefix, "{pass: \"https://127.0.0.1:1\", "
            "tls_server_name: \"%s\"}" % name, "\"%s\"" % name,
            "expected a host name")


@pytest.mark.parametrize("name", ["api.internal", "10.0.0.1", "::1",
                                  "under_score.test"])
def test_t_good_server_name(prefix, pki, name):
    port = free_port()
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text("servers:\n"
                    "  - listen: 127.0.0.1:%d\n"
                    "    locations:\n"
                    "      /: {proxy: {pass: \"https://127.0.0.1:1\", "
                    "tls_server_name: \"%s\", tls_ca: %s}}\n"
                    % (port, name, pki.ca))
    rc, _, err = run_eddy(["-t", "-p", prefix, "-c", conf])
    assert rc == 0, err


def test_t_https_url_in_upstream_servers(prefix):
    port = free_port()
    text = ("upstreams:\n"
            "  app:\n"
            "    servers: [\"https://127.0.0.1:1\"]\n"
            "servers:\n"
            "  - listen: 127.0.0.1:%d\n"
            "    locations:\n"
            "      /: {proxy: {pass: app}}\n" % port)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, _, err = run_eddy(["-t", "-p", prefix, "-c", conf])
    assert rc == 1
    assert "use pass: https://app" in err, err


def test_https_default_port_is_443(prefix, pki):
    # Accepted by -t: https://name without a port means port 443.
    port = free_port()
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text("servers:\n"
                    "  - listen: 127.0.0.1:%d\n"
                    "    locations:\n"
                    "      /: {proxy: {pass: \"https://127.0.0.1/base/\", "
                    "tls_ca: %s}}\n" % (port, pki.ca))
    rc, out, err = run_eddy(["-T", "-p", prefix, "-c", conf])
    assert rc == 0, err


def test_reload_rereads_ca(eddy, pki, tmp_path):
    with Backend(tls=backend_ctx(pki)) as b:
        ca = tmp_path / "ca.pem"
        ca.write_bytes((pki.root / "c.pem").read_bytes())  # not a CA of b
        e = start(eddy, "{pass: \"https://127.0.0.1:%d\", tls_ca: %s}"
                  % (b.port, ca))
        assert e.get("/").status == 502
        old = e.wait_workers(1)
        ca.write_bytes((pki.root / "ca.pem").read_bytes())
        e.signal(1)  # SIGHUP
        e.wait_workers(1, exclude=old)
        assert e.get("/").status == 200, e.error_log


def test_ipv6_literal_upstream(eddy, pki):
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    with Backend(tls=backend_ctx(pki), host="::1",
                 family=socket.AF_INET6) as b:
        e = start(eddy, "{pass: \"https://[::1]:%d\", tls_verify: false}"
                  % b.port)
        r = e.get("/six")
        assert r.status == 200, e.error_log
        assert b.tls_info[0]["sni"] is None
