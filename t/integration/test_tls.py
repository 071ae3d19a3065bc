"""TLS (config.md `tls`, issue 6): HTTPS listeners, SNI choosing the
certificate, the default certificate, chains, ALPN, protocol versions,
session resumption through shared ticket keys (across connections,
workers and reloads), -t errors, certificate reload, keep-alive,
pipelining and big responses over TLS, and garbage instead of a
ClientHello.

Certificates come from a throw-away CA made once per test session with the
openssl command line."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (pid_alive, position, proc_children, read_response,
                      read_until_close, run_eddy, split_response, wait_for)
from tlsutil import OPENSSL, pki  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(OPENSSL is None,
                                reason="the openssl command is needed")


# --------------------------------------------------------------------------
# helpers


def client_ctx(pki, alpn=None, min_version=None, max_version=None,
               ciphers=None):
    """A client context trusting the test root only (hostname checks off:
    tests look at the certificate's CN themselves)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_connect(port, ctx, sni=None, session=None, timeout=5.0):
    """A TLS socket after its handshake; sni None sends no server name."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except Exception:
        raw.close()
        raise
    s.settimeout(timeout)
    return s


def peer_cn(s):
    cert = s.getpeercert()
    subject = dict(x[0] for x in cert["subject"])
    return subject["commonName"]


def get(s, path="/", host="x", close=False):
    """One request on an open TLS socket; (status, headers, body)."""
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n"
               % (path, host, "Connection: close\r\n" if close else ""))
              .encode())
    return split_response(read_response(s))


def read_responses(s, n, timeout=10.0):
    """Reads n pipelined responses with Content-Length bodies from s;
    returns [(status, body)]."""
    buf = b""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            status, headers, _ = split_response(head + sep)
            length = int(headers["content-length"][0])
            if len(rest) >= length:
                out.append((status, rest[:length]))
                buf = rest[length:]
                continue
        assert time.monotonic() < deadline, \
            "%d of %d responses in %ss" % (len(out), n, timeout)
        chunk = s.recv(65536)
        assert chunk, "closed after %d of %d responses" % (len(out), n)
        buf += chunk
    assert buf == b""
    return out


def https(port, ctx, sni=None, host="x", session=None, path="/"):
    """One request on a new TLS connection. Returns (status, body, info)
    where info has the CN, ALPN, version, session and session_reused."""
    s = tls_connect(port, ctx, sni=sni, session=session)
    try:
        status, _, body = get(s, path, host=host)
        info = {
            "cn": peer_cn(s),
            "alpn": s.selected_alpn_protocol(),
            "version": s.version(),
            # TLS 1.3 tickets arrive after the handshake: read the session
            # once a response came back.
            "session": s.session,
            "reused": s.session_reused,
        }
    finally:
        s.close()
    return status, body.decode(), info


def s_client(port, *args, sni=None, timeout=10):
    """Runs `openssl s_client` against the port with stdin closed; returns
    (returncode, combined output)."""
    cmd = [OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port]
    if sni:
        cmd += ["-servername", sni]
    else:
        cmd += ["-noservername"]
    cmd += list(args)
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def install_certs(e, pki, names=("default", "a", "b", "c")):
    """Copies certificates and keys into the server's prefix (certs/)."""
    for n in names:
        e.write_file("certs/%s.pem" % n,
                     (pki.root / (n + ".pem")).read_bytes())
        e.write_file("certs/%s.key" % n,
                     (pki.root / (n + ".key")).read_bytes())


def start(eddy, pki, config, ports=1, names=("default", "a", "b", "c")):
    e = eddy(config, ports=ports, start=False)
    install_certs(e, pki, names)
    return e.start()


BODY = "$server_name $scheme $worker_id $connection_requests\\n"

CONFIG = """
workers: %(workers)d
shutdown_timeout: 2s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
events: {accept: reuseport}
servers:
  - listen: 127.0.0.1:{port}
    names: [default.test]
    tls: {certificate: certs/default.pem, key: certs/default.key}
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
  - listen: 127.0.0.1:{port}
    names: [a.test]
    tls: {certificate: certs/a.pem, key: certs/a.key}
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
  - listen: 127.0.0.1:{port}
    names: [b.test, "*.b.test"]
    tls: {certificate: certs/b.pem, key: certs/b.key}
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
  - listen: 127.0.0.1:{port}
    names: [c.test]
    tls:
      certificate: certs/c.pem
      key: certs/c.key
      protocols: [TLSv1.2]
      session_tickets: false
    locations:
      /:
        return: {status: 200, body: "%(body)s"}
"""


def config(workers=1, body=BODY):
    return CONFIG % {"workers": workers, "body": body}


@pytest.fixture
def srv(eddy, pki):
    return start(eddy, pki, config())


# --------------------------------------------------------------------------
# requests, certificates, SNI


def test_https_request(srv, pki):
    status, body, info = https(srv.port, client_ctx(pki), sni="default.test",
                               host="default.test")
    assert status == 200
    assert body == "default.test https 0 1\n"
    assert info["version"] == "TLSv1.3"
    assert info["cn"] == "default.test"


@pytest.mark.parametrize("name", ["a.test", "b.test"])
def test_sni_picks_certificate(srv, pki, name):
    status, body, info = https(srv.port, client_ctx(pki), sni=name,
                               host=name)
    assert status == 200
    assert body.startswith(name + " https ")
    assert info["cn"] == name


def test_sni_wildcard_name(srv, pki):
    _, _, info = https(srv.port, client_ctx(pki), sni="www.b.test")
    assert info["cn"] == "b.test"


def test_sni_is_case_insensitive(srv, pki):
    _, _, info = https(srv.port, client_ctx(pki), sni="A.Test")
    assert info["cn"] == "a.test"


def test_unknown_sni_gets_default_certificate(srv, pki):
    status, body, info = https(srv.port, client_ctx(pki),
                               sni="unknown.example", host="unknown.example")
    assert status == 200
    assert info["cn"] == "default.test"
    assert body.startswith("default.test https ")


def test_no_sni_gets_default_certificate(srv, pki):
    status, _, info = https(srv.port, client_ctx(pki), sni=None)
    assert status == 200
    assert info["cn"] == "default.test"


def test_s_client_sni(srv, pki):
    rc, out = s_client(srv.port, "-CAfile", pki.ca, sni="a.test")
    assert rc == 0, out
    assert "subject=CN = a.test" in out
    assert "Verify return code: 0 (ok)" in out


def test_certificate_chain_is_sent(srv, pki):
    """b.test is signed by an intermediate that only the server's file
    holds: verification against the root alone needs the chain."""
    rc, out = s_client(srv.port, "-CAfile", pki.ca, "-showcerts",
                       "-verify_return_error", sni="b.test")
    assert rc == 0, out
    assert "Verify return code: 0 (ok)" in out
    assert out.count("-----BEGIN CERTIFICATE-----") == 2, out


def test_rsa_and_ecdsa_certificates(srv, pki):
    """b.test has an RSA key, the others EC keys."""
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    for name, kind in (("a.test", "ECDSA"), ("b.test", "RSA")):
        s = tls_connect(srv.port, ctx, sni=name)
        try:
            assert kind in s.cipher()[0], (name, s.cipher())
        finally:
            s.close()


def test_host_chooses_server_after_sni(srv, pki):
    """SNI picks the certificate; the Host header picks the server that
    answers, as for plain HTTP."""
    status, body, info = https(srv.port, client_ctx(pki), sni="a.test",
                               host="b.test")
    assert status == 200
    assert info["cn"] == "a.test"
    assert body.startswith("b.test https ")


def test_plain_and_tls_listeners(eddy, pki):
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen:
              - {address: "127.0.0.1:{port0}"}
              - {address: "127.0.0.1:{port1}", tls: false}
            tls: {certificate: certs/a.pem, key: certs/a.key}
            locations:
              /:
                return: {status: 200, body: "$scheme\\n"}
        """, ports=2)
    status, body, _ = https(e.ports[0], client_ctx(pki))
    assert (status, body) == (200, "https\n")
    r = e.get("/", port=e.ports[1])
    assert (r.status, r.text) == (200, "http\n")


# --------------------------------------------------------------------------
# ALPN and protocol versions


def test_alpn_http11(srv, pki):
    _, _, info = https(srv.port, client_ctx(pki, alpn=["http/1.1"]))
    assert info["alpn"] == "http/1.1"


def test_alpn_h2_first(srv, pki):
    # HTTP/2 is on by default on TLS addresses (test_h2_tls.py speaks it).
    s = tls_connect(srv.port, client_ctx(pki, alpn=["h2", "http/1.1"]))
    assert s.selected_alpn_protocol() == "h2"
    s.close()


def test_alpn_unknown_only_gets_no_alpn(srv, pki):
    status, _, info = https(srv.port, client_ctx(pki, alpn=["spdy/3"]))
    assert status == 200
    assert info["alpn"] is None


def test_no_alpn_offered(srv, pki):
    status, _, info = https(srv.port, client_ctx(pki))
    assert status == 200
    assert info["alpn"] is None


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_protocols_refused(srv, pki, flag):
    """The client really offers the old version (seclevel 0 lets it), and
    the server answers with a protocol_version alert."""
    rc, out = s_client(srv.port, flag, "-cipher", "DEFAULT@SECLEVEL=0",
                       sni="a.test")
    assert rc != 0, out
    assert "alert protocol version" in out or "unsupported protocol" in out, \
        out
    # The same client on TLS 1.2 gets through: the refusal was the version.
    rc, out = s_client(srv.port, "-tls1_2", "-cipher", "DEFAULT@SECLEVEL=0",
                       sni="a.test")
    assert rc == 0, out
    assert "Protocol  : TLSv1.2" in out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_refused_python(srv, pki):
    ctx = client_ctx(pki, min_version=ssl.TLSVersion.TLSv1,
                     max_version=ssl.TLSVersion.TLSv1_1,
                     ciphers="DEFAULT@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        tls_connect(srv.port, ctx, sni="a.test").close()
    assert srv.running()


def test_tls12_works(srv, pki):
    status, _, info = https(srv.port, client_ctx(
        pki, max_version=ssl.TLSVersion.TLSv1_2), sni="a.test")
    assert status == 200
    assert info["version"] == "TLSv1.2"


def test_sni_server_protocols_apply(srv, pki):
    """c.test allows TLS 1.2 only: SNI must bring its protocols, not only
    its certificate."""
    _, _, info = https(srv.port, client_ctx(pki), sni="c.test")
    assert info["cn"] == "c.test"
    assert info["version"] == "TLSv1.2"
    _, _, info = https(srv.port, client_ctx(pki), sni="a.test")
    assert info["version"] == "TLSv1.3"


def test_tls13_only_refuses_tls12(eddy, pki):
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/a.pem, key: certs/a.key,
                  protocols: [TLSv1.3]}
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
        """)
    with pytest.raises(ssl.SSLError):
        tls_connect(e.port, client_ctx(
            pki, max_version=ssl.TLSVersion.TLSv1_2)).close()
    status, body, info = https(e.port, client_ctx(pki))
    assert (status, body, info["version"]) == (200, "ok\n", "TLSv1.3")


def test_custom_ciphers(eddy, pki):
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/a.pem, key: certs/a.key,
                  ciphers: "ECDHE-ECDSA-CHACHA20-POLY1305"}
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
        """)
    s = tls_connect(e.port, client_ctx(
        pki, max_version=ssl.TLSVersion.TLSv1_2))
    try:
        assert s.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"
    finally:
        s.close()


CLIENT_ORDER = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"


def test_default_ciphers_follow_the_clients_order(eddy, pki):
    """The default set is all AEAD: the client's order picks (as nginx
    and H2O), in TLS 1.2 and TLS 1.3."""
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/a.pem, key: certs/a.key}
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
        """)
    s = tls_connect(e.port, client_ctx(
        pki, max_version=ssl.TLSVersion.TLSv1_2, ciphers=CLIENT_ORDER))
    try:
        assert s.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"
    finally:
        s.close()
    for suites in ("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
                   "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"):
        rc, out = s_client(e.port, "-tls1_3", "-ciphersuites", suites)
        assert rc == 0, out
        assert "Cipher is " + suites.split(":")[0] in out, out


def test_configured_ciphers_keep_the_servers_order(eddy, pki):
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/a.pem, key: certs/a.key,
                  ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"}
            locations:
              /:
                return: {status: 200, body: "ok\\n"}
        """)
    s = tls_connect(e.port, client_ctx(
        pki, max_version=ssl.TLSVersion.TLSv1_2, ciphers=CLIENT_ORDER))
    try:
        assert s.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"
    finally:
        s.close()


# --------------------------------------------------------------------------
# session resumption


def test_resumption_two_connections(srv, pki):
    ctx = client_ctx(pki)
    _, _, first = https(srv.port, ctx, sni="a.test")
    assert not first["reused"]
    assert first["session"] is not None
    _, _, second = https(srv.port, ctx, sni="a.test",
                         session=first["session"])
    assert second["reused"]
    assert second["cn"] == "a.test"


def test_resumption_tls12_ticket(srv, pki):
    ctx = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    _, _, first = https(srv.port, ctx, sni="a.test")
    assert first["session"].has_ticket
    _, _, second = https(srv.port, ctx, sni="a.test",
                         session=first["session"])
    assert second["reused"]
    assert second["version"] == "TLSv1.2"


def test_resumption_across_workers(eddy, pki):
    e = start(eddy, pki, config(workers=2))
    e.wait_workers(2)
    ctx = client_ctx(pki)
    _, body, first = https(e.port, ctx, sni="a.test", host="a.test")
    seen = {}
    for _ in range(60):
        _, body, info = https(e.port, ctx, sni="a.test", host="a.test",
                              session=first["session"])
        wid = int(body.split()[2])
        seen.setdefault(wid, []).append(info["reused"])
        if len(seen) == 2 and all(len(v) >= 2 for v in seen.values()):
            break
    assert sorted(seen) == [0, 1], "one worker answered everything: %s" % seen
    for wid, reused in seen.items():
        assert all(reused), "worker %d did not resume: %s" % (wid, seen)


def test_resumption_across_binary_upgrade(eddy, pki):
    # The ticket keys are shared with the binary started on USR2: a
    # session made by the old master's workers resumes on the new one's.
    e = start(eddy, pki, config(workers=1))
    old_workers = e.wait_workers(1)
    ctx = client_ctx(pki)
    _, _, first = https(e.port, ctx, sni="a.test")
    pid_file = e.prefix / "logs" / "eddy.pid"
    e.signal(signal.SIGUSR2)

    def new_master():
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid != e.pid else None

    new_pid = wait_for(new_master, 10)
    assert new_pid, e.all_logs()
    e._seen_workers.add(new_pid)
    try:
        e.signal(signal.SIGWINCH)         # the old workers stop
        # (the new master is a child of the old one)
        assert wait_for(lambda: set(proc_children(e.pid)) <= {new_pid}, 10)
        assert wait_for(lambda: proc_children(new_pid), 10)
        for _ in range(3):
            _, _, info = https(e.port, ctx, sni="a.test",
                               session=first["session"])
            assert info["reused"], e.all_logs()
            assert not set(old_workers) & set(proc_children(e.pid))
    finally:
        os.kill(new_pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(new_pid), 5)


@pytest.mark.parametrize("value", ["abc", "0", "99999"])
def test_bad_inherited_ticket_keys_are_ignored_with_a_warning(eddy, pki,
                                                              value):
    e = eddy(config(workers=1), env={"EDDY_TLS_KEYS": value}, start=False)
    install_certs(e, pki)
    e.start()
    _, body, _ = https(e.port, client_ctx(pki), sni="a.test")
    assert body
    assert "EDDY_TLS_KEYS does not name inherited ticket keys" \
        in e.all_logs()


def test_resumption_across_reload(eddy, pki):
    e = start(eddy, pki, config(workers=2))
    old = e.wait_workers(2)
    ctx = client_ctx(pki)
    _, _, first = https(e.port, ctx, sni="a.test")
    ctx12 = client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    _, _, first12 = https(e.port, ctx12, sni="a.test")
    e.signal(signal.SIGHUP)
    e.wait_workers(2, exclude=old)
    for _ in range(4):
        _, _, info = https(e.port, ctx, sni="a.test",
                           session=first["session"])
        assert info["reused"]
    _, _, info = https(e.port, ctx12, sni="a.test",
                       session=first12["session"])
    assert info["reused"]


def test_resumption_across_reload_sni_server_with_tickets(eddy, pki):
    """The default server has no tickets, a.test has: SNI moves the
    connection to a.test's context, but OpenSSL takes ticket keys from the
    context the connection started on. They must be the shared keys too,
    or tickets would not outlive a reload."""
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/default.pem, key: certs/default.key,
                  session_tickets: false}
            locations:
              /:
                return: {status: 200, body: "default\\n"}
          - listen: 127.0.0.1:{port}
            names: [a.test]
            tls: {certificate: certs/a.pem, key: certs/a.key}
            locations:
              /:
                return: {status: 200, body: "a\\n"}
        """)
    old = e.wait_workers(1)
    ctx = client_ctx(pki)
    _, _, first = https(e.port, ctx, sni="a.test")
    assert first["session"].has_ticket
    e.signal(signal.SIGHUP)
    e.wait_workers(1, exclude=old)
    _, _, info = https(e.port, ctx, sni="a.test", session=first["session"])
    assert info["reused"]


def test_session_not_resumed_on_another_certificate(srv, pki):
    """A session made with a.test's certificate is not resumed by b.test:
    the session id context is the certificate's."""
    ctx = client_ctx(pki)
    _, _, first = https(srv.port, ctx, sni="a.test")
    _, _, other = https(srv.port, ctx, sni="b.test",
                        session=first["session"])
    assert other["cn"] == "b.test"
    assert not other["reused"]


def test_session_tickets_off_still_resumes_on_one_worker(srv, pki):
    """c.test has session_tickets: false: no ticket, the worker's own
    session cache resumes (TLS 1.2 session ids)."""
    ctx = client_ctx(pki)
    _, _, first = https(srv.port, ctx, sni="c.test")
    assert first["version"] == "TLSv1.2"
    assert not first["session"].has_ticket
    _, _, second = https(srv.port, ctx, sni="c.test",
                         session=first["session"])
    assert second["reused"]


def test_resumption_s_client(srv, pki, tmp_path):
    sess = tmp_path / "sess.pem"
    rc, out = s_client(srv.port, "-sess_out", str(sess), "-tls1_2",
                       sni="a.test")
    assert rc == 0, out
    assert "New, TLSv1.2" in out
    rc, out = s_client(srv.port, "-sess_in", str(sess), "-tls1_2",
                       sni="a.test")
    assert rc == 0, out
    assert "Reused, TLSv1.2" in out


# --------------------------------------------------------------------------
# -t and reload


def write_conf(prefix, text):
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    return conf


def check_t(prefix, pki, tls_block, needle, message, nth=1):
    """Writes a config with the given tls block (flow map text), runs -t
    and checks the error message is at needle's position."""
    for n in ("a", "b"):
        for ext in ("pem", "key"):
            shutil.copy(str(pki.root / ("%s.%s" % (n, ext))),
                        str(prefix / ("%s.%s" % (n, ext))))
    text = ("servers:\n"
            "  - listen: 127.0.0.1:%d\n"
            "    tls: %s\n"
            "    locations:\n"
            "      /:\n"
            "        return: 204\n" % (free_port_number(), tls_block))
    conf = write_conf(prefix, text)
    rc, out, err = run_eddy(["-t", "-p", prefix, "-c", conf])
    assert rc == 1, err
    line, col = position(text, needle, nth)
    assert "%s:%d:%d: " % (conf, line, col) in err, err
    assert message in err, err
    assert "test failed" in err
    return err


def free_port_number():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_t_mismatched_key(prefix, pki):
    err = check_t(prefix, pki, "{certificate: a.pem, key: b.key}", "b.key",
                  "does not match certificate")
    assert "b.key" in err and "a.pem" in err


def test_t_missing_certificate(prefix, pki):
    check_t(prefix, pki, "{certificate: missing.pem, key: a.key}",
            "missing.pem", "No such file or directory")


def test_t_certificate_not_pem(prefix, pki):
    (prefix / "junk.pem").write_text("not a certificate\n")
    check_t(prefix, pki, "{certificate: junk.pem, key: a.key}", "junk.pem",
            "no PEM certificate")


def test_t_key_is_a_certificate(prefix, pki):
    check_t(prefix, pki, "{certificate: a.pem, key: a.pem}", "a.pem",
            "no PEM private key", nth=2)


def test_t_missing_key(prefix, pki):
    check_t(prefix, pki, "{certificate: a.pem, key: nokey.key}", "nokey.key",
            "cannot load key")


def test_t_bad_ciphers(prefix, pki):
    check_t(prefix, pki,
            "{certificate: a.pem, key: a.key, ciphers: \"NOPE:NADA\"}",
            "\"NOPE:NADA\"", "invalid ciphers")


@pytest.mark.parametrize("proto", ["TLSv1", "TLSv1.1", "SSLv3"])
def test_t_old_protocol(prefix, pki, proto):
    check_t(prefix, pki,
            "{certificate: a.pem, key: a.key, protocols: [TLSv1.2, %s]}"
            % proto, proto + "]", "not supported")


def test_t_unknown_protocol(prefix, pki):
    check_t(prefix, pki,
            "{certificate: a.pem, key: a.key, protocols: [TLSv1.9]}",
            "TLSv1.9", "unknown TLS protocol")


def test_t_tls_without_key(prefix, pki):
    check_t(prefix, pki, "{certificate: a.pem}", "{certificate",
            "\"key\" is required")


def test_t_default_server_without_certificate(prefix, pki):
    shutil.copy(str(pki.root / "a.pem"), str(prefix / "a.pem"))
    shutil.copy(str(pki.root / "a.key"), str(prefix / "a.key"))
    port = free_port_number()
    text = ("servers:\n"
            "  - listen: {address: 127.0.0.1:%d, tls: true}\n"
            "  - listen: 127.0.0.1:%d\n"
            "    names: [a.test]\n"
            "    tls: {certificate: a.pem, key: a.key}\n" % (port, port))
    conf = write_conf(prefix, text)
    rc, _, err = run_eddy(["-t", "-p", prefix, "-c", conf])
    assert rc == 1
    assert "default server" in err and "no tls certificate" in err, err


def test_t_good_tls_config(prefix, pki):
    shutil.copy(str(pki.root / "a.pem"), str(prefix / "a.pem"))
    shutil.copy(str(pki.root / "a.key"), str(prefix / "a.key"))
    conf = write_conf(prefix, "servers:\n"
                      "  - listen: 127.0.0.1:%d\n"
                      "    tls: {certificate: a.pem, key: a.key}\n"
                      % free_port_number())
    rc, _, err = run_eddy(["-t", "-p", prefix, "-c", conf])
    assert rc == 0, err


def test_reload_picks_up_new_certificate(srv, pki):
    old = srv.wait_workers(1)
    _, _, info = https(srv.port, client_ctx(pki), sni="a.test")
    assert info["cn"] == "a.test"
    # Replace the files in place, as a certificate renewal does.
    srv.write_file("certs/a.pem", (pki.root / "a2.pem").read_bytes())
    srv.write_file("certs/a.key", (pki.root / "a2.key").read_bytes())
    srv.signal(signal.SIGHUP)
    srv.wait_workers(1, exclude=old)
    _, _, info = https(srv.port, client_ctx(pki), sni="a.test")
    assert info["cn"] == "a2.test"
    # The other servers keep theirs.
    _, _, info = https(srv.port, client_ctx(pki), sni="b.test")
    assert info["cn"] == "b.test"


def test_reload_with_broken_key_keeps_old_certificate(srv, pki):
    old = srv.wait_workers(1)
    srv.write_file("certs/a.key", (pki.root / "b.key").read_bytes())
    srv.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed" in srv.error_log, 10), \
        srv.error_log
    assert "does not match" in srv.error_log
    assert srv.worker_pids() == old
    _, _, info = https(srv.port, client_ctx(pki), sni="a.test")
    assert info["cn"] == "a.test"


# --------------------------------------------------------------------------
# connections


def test_keepalive_several_requests(srv, pki):
    s = tls_connect(srv.port, client_ctx(pki), sni="a.test")
    try:
        for i in range(1, 6):
            status, _, body = get(s, host="a.test")
            assert status == 200
            assert body == ("a.test https 0 %d\n" % i).encode()
        status, headers, body = get(s, host="a.test", close=True)
        assert status == 200
        assert headers["connection"] == ["close"]
        data, closed = read_until_close(s)
        assert closed and data == b""
    finally:
        s.close()


def test_close_sends_close_notify(srv, pki):
    """After Connection: close the server ends with close_notify: the
    client sees a clean TLS end (an SSL read of b''), not a bare FIN."""
    ctx = client_ctx(pki)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="a.test",
                        suppress_ragged_eofs=False)
    try:
        get(s, host="a.test", close=True)
        assert s.recv(100) == b""
    finally:
        s.close()


def test_pipelined_requests_in_one_write(srv, pki):
    """Many requests in one TLS write; the responses come back whole and in
    order though the client reads slowly (partial writes, records
    coalesced)."""
    n = 400
    s = tls_connect(srv.port, client_ctx(pki), sni="a.test", timeout=10)
    try:
        req = b"GET /%d HTTP/1.1\r\nHost: a.test\r\n\r\n"
        s.sendall(b"".join(req % i for i in range(n)))
        time.sleep(0.3)
        for i, (status, body) in enumerate(read_responses(s, n), 1):
            assert status == 200
            assert body == ("a.test https 0 %d\n" % i).encode()
    finally:
        s.close()


BIG = "0123456789abcdef" * 4096   # 64 KiB


def test_regress_tls_large_pipelined_responses(eddy, pki):
    """Responses bigger than a TLS record, several per write: every byte
    arrives without the client sending anything more (the TLS writer used
    to stop after one record while the socket still had room, waiting for
    an EPOLLOUT that never came)."""
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/a.pem, key: certs/a.key}
            locations:
              /:
                return: {status: 200, body: "%s"}
        """ % BIG)
    s = tls_connect(e.port, client_ctx(pki), timeout=10)
    try:
        n = 20
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * n)
        time.sleep(0.3)   # let the server fill the socket
        for status, body in read_responses(s, n):
            assert status == 200
            assert body == BIG.encode()
    finally:
        s.close()


def test_large_response_slow_reader(eddy, pki):
    e = start(eddy, pki, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/a.pem, key: certs/a.key}
            locations:
              /:
                return: {status: 200, body: "%s"}
        """ % BIG)
    s = tls_connect(e.port, client_ctx(pki), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        got = b""
        while len(got) < len(BIG):
            chunk = s.recv(1000)
            assert chunk
            got += chunk
            time.sleep(0.001)
        _, _, body = split_response(got + read_response_rest(s, got))
        assert body == BIG.encode()
    finally:
        s.close()


STATIC_SIZES = (1, 1000, 16383, 16384, 16385, 65536, 69631, 69632, 69633,
                1 << 20, 3 << 20)


def test_static_files_to_a_slow_reader_byte_exact(eddy, pki):
    """Files of sizes around a record (16 KiB) and around the bytes
    written at once (up to 68 KiB of records per write), pipelined, to a
    client with a small receive window that reads slowly: the socket
    fills in the middle of a write again and again, and what it did not
    take goes first the next time. Every byte arrives, in order."""
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            tls: {certificate: certs/a.pem, key: certs/a.key}
            root: html
        """, start=False)
    install_certs(e, pki, ("a",))
    files = {}
    for n in STATIC_SIZES:
        files[n] = os.urandom(n)
        e.write_file("html/%d.bin" % n, files[n])
    e.start()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", e.port))
    s = client_ctx(pki).wrap_socket(raw)
    try:
        s.sendall(b"".join(b"GET /%d.bin HTTP/1.1\r\nHost: a\r\n\r\n" % n
                           for n in STATIC_SIZES))
        got = b""
        deadline = time.monotonic() + 30
        want = sum(STATIC_SIZES)
        while len(got) < want + 300 * len(STATIC_SIZES):
            chunk = s.recv(8192 if len(got) < 1 << 20 else 65536)
            if not chunk:
                break
            got += chunk
            if len(got) < 300000:
                time.sleep(0.0005)
            if time.monotonic() > deadline or got.endswith(
                    files[STATIC_SIZES[-1]][-64:]):
                break
        for n in STATIC_SIZES:
            head, _, rest = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"Content-Length: %d" % n in head
            assert rest[:n] == files[n], n
            got = rest[n:]
        assert got == b""
    finally:
        s.close()


def read_response_rest(s, got):
    """The bytes still missing from a response whose start is got."""
    head, _, body = got.partition(b"\r\n\r\n")
    length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length")][0])
    rest = b""
    while len(body) + len(rest) < length:
        chunk = s.recv(65536)
        assert chunk
        rest += chunk
    return rest


def compiled_modules():
    rc, out, _ = run_eddy(["-V"])
    for line in out.splitlines():
        if line.startswith("modules:"):
            return line.split()[1:]
    return []


def test_static_file_over_tls(eddy, pki):
    """A file bigger than the socket buffers goes through TLS (no sendfile:
    read and written in records) whole, also to a slow reader, and a
    range of it too."""
    if "static" not in compiled_modules():
        pytest.skip("the static module is not compiled in")
    data = os.urandom(3 * 1024 * 1024 + 123)
    e = eddy("""
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            root: html
            tls: {certificate: certs/a.pem, key: certs/a.key}
            locations:
              /:
                static: {}
        """, start=False)
    install_certs(e, pki, ("a",))
    e.write_file("html/big.bin", data)
    e.start()
    s = tls_connect(e.port, client_ctx(pki), timeout=20)
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"GET /big.bin HTTP/1.1\r\nHost: a\r\n"
                  b"Range: bytes=1000000-1000099\r\n\r\n")
        time.sleep(0.5)   # the server fills the socket and waits
        (status, body), (status2, body2) = read_responses(s, 2, timeout=20)
        assert status == 200
        assert body == data
        assert status2 == 206
        assert body2 == data[1000000:1000100]
    finally:
        s.close()


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    bytes(range(256)) * 4,
    b"\x16\x03\x01\x02\x00" + b"\x01" * 40,   # a ClientHello cut short
    b"\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00",  # a malformed one
])
def test_garbage_instead_of_client_hello(srv, pki, garbage):
    workers = srv.wait_workers(1)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(garbage)
        if garbage.startswith(b"\x16\x03\x01\x02\x00"):
            s.shutdown(socket.SHUT_WR)
        data, closed = read_until_close(s, timeout=5)
    finally:
        s.close()
    assert closed
    assert b"HTTP/1.1" not in data
    # The worker is still there and serving.
    assert srv.worker_pids() == workers
    status, _, _ = https(srv.port, client_ctx(pki), sni="a.test")
    assert status == 200


def test_handshake_abandoned_midway(srv, pki):
    """Clients that leave in the middle of the handshake cost nothing but
    their connection."""
    workers = srv.wait_workers(1)
    for _ in range(5):
        outgoing = ssl.MemoryBIO()
        obj = client_ctx(pki).wrap_bio(ssl.MemoryBIO(), outgoing,
                                       server_hostname="a.test")
        with pytest.raises(ssl.SSLWantReadError):
            obj.do_handshake()
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            raw.sendall(outgoing.read())
            assert raw.recv(100)   # the server's first flight
        finally:
            raw.close()
    assert srv.worker_pids() == workers
    status, _, _ = https(srv.port, client_ctx(pki), sni="a.test")
    assert status == 200


def test_many_handshakes(srv, pki):
    ctx = client_ctx(pki)
    for i in range(30):
        sni = ("a.test", "b.test", "default.test", None)[i % 4]
        status, _, info = https(srv.port, ctx, sni=sni)
        assert status == 200
        assert info["cn"] == (sni or "default.test")
