"""OCSP stapling (modules-2.md "TLS: OCSP stapling"): responses fetched
from the certificate's responder by a helper of the master, or read from
a file, stapled when checked (signed by the issuer's delegate, for this
certificate, current); a responder down, a foreign or expired response:
handshakes go on unstapled; a revoked certificate: stapled, logged at
crit; the -t errors.

The responder is `openssl ocsp` answering each request from its index
(-reqin/-respout) behind a small HTTP server on loopback: `openssl ocsp
-port` listens on every address."""

import http.server
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (check_config_error, free_port, run_eddy, wait_for)
from tlsutil import OPENSSL

pytestmark = pytest.mark.skipif(OPENSSL is None,
                                reason="the openssl command is needed")


def ossl(args, cwd, timeout=30):
    p = subprocess.run([OPENSSL] + args, cwd=str(cwd), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    assert p.returncode == 0, "openssl %s failed:\n%s" % (
        " ".join(args), p.stderr.decode(errors="replace"))
    return p.stdout


def key(name, cwd):
    ossl(["genpkey", "-algorithm", "EC", "-pkeyopt",
          "ec_paramgen_curve:P-256", "-out", name + ".key"], cwd)


def sign(name, cn, serial, ext, cwd):
    (cwd / (name + ".ext")).write_text(ext)
    ossl(["req", "-new", "-key", name + ".key", "-subj", "/CN=" + cn,
          "-out", name + ".csr"], cwd)
    ossl(["x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
          "ca.key", "-set_serial", "0x%x" % serial, "-days", "3",
          "-extfile", name + ".ext", "-out", name + ".crt"], cwd)


class OcspPki:
    def __init__(self, root):
        self.root = root
        self.port = {}      # certificate -> its responder's port

    def response(self, cert, out):
        """A response of the test responder for cert (DER bytes), valid a
        day."""
        ossl(["ocsp", "-issuer", "ca.pem", "-cert", cert + ".crt",
              "-no_nonce", "-reqout", out + ".req"], self.root)
        return self.answer((self.root / (out + ".req")).read_bytes(), out)

    def answer(self, req, out="answer"):
        (self.root / (out + ".req")).write_bytes(req)
        ossl(["ocsp", "-index", "index.txt", "-rsigner", "ocsp.pem", "-rkey",
              "ocsp.key", "-CA", "ca.pem", "-reqin", out + ".req",
              "-respout", out + ".der", "-ndays", "1"], self.root)
        return (self.root / (out + ".der")).read_bytes()

    def expired(self, cert, out):
        """A response for cert signed by the responder whose nextUpdate
        passed an hour ago (openssl ocsp makes only current ones): its
        times rewritten, its tbsResponseData signed again."""
        der = bytearray(self.response(cert, out))
        stamps = [time.strftime("%Y%m%d%H%M%SZ", time.gmtime(
            time.time() - h * 3600)).encode() for h in (2, 2, 1)]
        # producedAt, thisUpdate, nextUpdate: the only GeneralizedTimes
        # (the certificates' times are UTCTime).
        at = [i for i in range(len(der) - 1)
              if der[i:i + 2] == b"\x18\x0f"]
        assert len(at) == 3, at
        for i, stamp in zip(at, stamps):
            der[i + 2:i + 17] = stamp
        # OCSPResponse { status, [0] { oid, OCTET STRING { Basic {
        # tbsResponseData, signatureAlgorithm, signature, ... }}}}
        off = tlv(der, 0)[1]
        off = tlv(der, off)[2]                  # past responseStatus
        off = tlv(der, off)[1]                  # into [0]
        off = tlv(der, off)[1]                  # into ResponseBytes
        off = tlv(der, off)[2]                  # past the OID
        off = tlv(der, off)[1]                  # into the OCTET STRING
        off = tlv(der, off)[1]                  # into BasicOCSPResponse
        tbs_start, _, tbs_end = tlv(der, off)
        alg_end = tlv(der, tbs_end)[2]
        _, sig_start, sig_end = tlv(der, alg_end)
        (self.root / (out + ".tbs")).write_bytes(der[tbs_start:tbs_end])
        for _ in range(50):
            sig = ossl(["dgst", "-sha256", "-sign", "ocsp.key",
                        out + ".tbs"], self.root)
            if len(sig) + 1 == sig_end - sig_start:
                der[sig_start + 1:sig_end] = sig
                return bytes(der)
        raise AssertionError("no signature of the same length")


def tlv(der, off):
    """(start, content start, end) of the DER element at off."""
    n = der[off + 1]
    if n < 0x80:
        return off, off + 2, off + 2 + n
    k = n & 0x7f
    n = int.from_bytes(der[off + 2:off + 2 + k], "big")
    return off, off + 2 + k, off + 2 + k + n


@pytest.fixture(scope="module")
def ocsp_pki(tmp_path_factory):
    """A CA, its OCSP responder (OCSPSigning), and leaves whose AIA names
    a responder on loopback: srv (good), rev (revoked), other (good, for
    foreign responses), down (nothing listens), fake (a responder giving
    fixed bytes); noaia has no OCSP URL, nochain.pem lacks the issuer."""
    root = tmp_path_factory.mktemp("ocsp_pki")
    pki = OcspPki(root)
    key("ca", root)
    ossl(["req", "-x509", "-new", "-key", "ca.key", "-subj",
          "/CN=eddy ocsp test ca", "-days", "3", "-addext",
          "basicConstraints=critical,CA:TRUE", "-addext",
          "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem"], root)
    key("ocsp", root)
    sign("ocsp", "eddy test responder", 0x2001,
         "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
         "extendedKeyUsage=OCSPSigning\n", root)
    (root / "ocsp.pem").write_bytes((root / "ocsp.crt").read_bytes())
    good, down, fake = free_port(), free_port(), free_port()
    leaves = [("srv", 0x1001, good), ("rev", 0x1002, good),
              ("other", 0x1003, good), ("down", 0x1004, down),
              ("fake", 0x1005, fake), ("noaia", 0x1006, None)]
    for name, serial, port in leaves:
        key(name, root)
        ext = "basicConstraints=CA:FALSE\nsubjectAltName=DNS:%s.test\n" \
            % name
        if port:
            ext += "authorityInfoAccess=OCSP;URI:http://127.0.0.1:%d/\n" \
                % port
        sign(name, name + ".test", serial, ext, root)
        (root / (name + ".pem")).write_bytes(
            (root / (name + ".crt")).read_bytes()
            + (root / "ca.pem").read_bytes())
        pki.port[name] = port
    (root / "nochain.pem").write_bytes((root / "srv.crt").read_bytes())
    revoked = time.strftime("%y%m%d%H%M%SZ", time.gmtime(time.time() - 3600))
    (root / "index.txt").write_text(
        "V\t301231000000Z\t\t1001\tunknown\t/CN=srv.test\n"
        "R\t301231000000Z\t%s\t1002\tunknown\t/CN=rev.test\n"
        "V\t301231000000Z\t\t1003\tunknown\t/CN=other.test\n"
        "V\t301231000000Z\t\t1005\tunknown\t/CN=fake.test\n" % revoked)
    return pki


class Responder:
    """An OCSP responder on loopback: `openssl ocsp` answers each POST,
    or the fixed bytes set in body."""

    def __init__(self, pki, port):
        self.pki = pki
        self.body = None
        self.requests = 0
        lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                req = self.rfile.read(n)
                with lock:
                    outer.requests += 1
                    body = outer.body
                    if body is None:
                        body = outer.pki.answer(req)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                                      Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def responder(ocsp_pki):
    made = []

    def make(name="srv"):
        r = Responder(ocsp_pki, ocsp_pki.port[name])
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


CONFIG = """
workers: 2
shutdown_timeout: 2s
error_log: {path: logs/error.log, level: info}
servers:
  - listen: 127.0.0.1:{port}
    tls: {certificate: certs/%(cert)s.pem, key: certs/%(cert)s.key%(extra)s}
    locations:
      /:
        return: {status: 200, body: "ok\\n"}
"""


def start(eddy, pki, cert, extra=", ocsp_stapling: true", files=()):
    e = eddy(CONFIG % {"cert": cert, "extra": extra}, start=False)
    for ext in ("pem", "key"):
        e.write_file("certs/%s.%s" % (cert, ext),
                     (pki.root / ("%s.%s" % (cert, ext))).read_bytes())
    for name, data in files:
        e.write_file(name, data)
    return e.start()


def handshake(port, timeout=10):
    """openssl s_client -status: (its output, seconds taken)."""
    t0 = time.monotonic()
    p = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-status"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    out = p.stdout.decode(errors="replace")
    assert "Verify return code" in out, out
    return out, time.monotonic() - t0


def stapled(out):
    """The stapled response's certificate status, or None."""
    if "OCSP response: no response sent" in out:
        return None
    assert "OCSP Response Status: successful" in out, out
    for line in out.splitlines():
        if line.strip().startswith("Cert Status:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(out)


def wait_staple(e, want, timeout=10):
    seen = []

    def check():
        seen.append(stapled(handshake(e.port)[0]))
        return seen[-1] == want
    assert wait_for(check, timeout=timeout, interval=0.2), (seen[-3:],
                                                            e.error_log)


def test_staples_from_the_responder(eddy, ocsp_pki, responder):
    r = responder("srv")
    e = start(eddy, ocsp_pki, "srv")
    wait_staple(e, "good")
    # Every worker staples the one response in shared memory.
    for _ in range(4):
        assert stapled(handshake(e.port)[0]) == "good"
    assert r.requests == 1
    log = e.error_log
    assert ("[notice]" in log and 'OCSP: certificate "%s": status good from '
            "http://127.0.0.1:%d/, valid until "
            % (e.prefix / "certs/srv.pem", ocsp_pki.port["srv"])) in log, log
    # Valid a day: asked again at half of it.
    assert re.search(r"next request in (4319\d|43200) s", log), log


def test_a_reload_keeps_the_response(eddy, ocsp_pki, responder):
    r = responder("srv")
    e = start(eddy, ocsp_pki, "srv")
    wait_staple(e, "good")
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload" in e.error_log
                    and "generation 2 started" in e.error_log, timeout=10)
    for _ in range(3):
        assert stapled(handshake(e.port)[0]) == "good"
    # Valid for a day: the new cycle does not ask again.
    time.sleep(0.5)
    assert r.requests == 1


def test_staples_from_a_file(eddy, ocsp_pki):
    der = ocsp_pki.response("srv", "srv-file")
    e = start(eddy, ocsp_pki, "srv",
              ", ocsp_stapling: true, ocsp_response_file: certs/srv.ocsp",
              files=[("certs/srv.ocsp", der)])
    # From the first handshake: read at load.
    out, _ = handshake(e.port)
    assert stapled(out) == "good"
    assert "OCSP: certificate" not in e.error_log


def produced_at(out):
    for line in out.splitlines():
        if line.strip().startswith("Produced At:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(out)


def test_a_reload_reads_the_file_again(eddy, ocsp_pki):
    first = ocsp_pki.response("srv", "srv-reload1")
    e = start(eddy, ocsp_pki, "srv",
              ", ocsp_stapling: true, ocsp_response_file: certs/srv.ocsp",
              files=[("certs/srv.ocsp", first)])
    was = produced_at(handshake(e.port)[0])
    # A file for another certificate: the reload fails, the old response
    # stays stapled.
    e.write_file("certs/srv.ocsp", ocsp_pki.response("other", "srv-reload2"))
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed" in e.error_log, timeout=10)
    assert "the response is not for this certificate" in e.error_log
    out = handshake(e.port)[0]
    assert stapled(out) == "good" and produced_at(out) == was
    # A newer response: stapled after the reload.
    time.sleep(1.1)
    e.write_file("certs/srv.ocsp", ocsp_pki.response("srv", "srv-reload3"))
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: produced_at(handshake(e.port)[0]) != was,
                    timeout=10), e.error_log


def test_responder_down_handshakes_go_on_unstapled(eddy, ocsp_pki):
    e = start(eddy, ocsp_pki, "down")
    for _ in range(3):
        out, took = handshake(e.port)
        assert stapled(out) is None
        assert took < 2.0
    want = ('[error]', 'OCSP: certificate "%s": no response stapled from '
            'http://127.0.0.1:%d/: cannot connect to 127.0.0.1:%d: '
            'Connection refused; next request in 60 s'
            % (e.prefix / "certs/down.pem", ocsp_pki.port["down"],
               ocsp_pki.port["down"]))
    assert wait_for(lambda: all(w in e.error_log for w in want),
                    timeout=10), e.error_log


def test_a_hung_responder_blocks_only_the_helper(eddy, ocsp_pki):
    # Connections are queued but never accepted nor answered.
    hung = socket.socket()
    hung.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    hung.bind(("127.0.0.1", ocsp_pki.port["down"]))
    hung.listen(8)
    try:
        e = start(eddy, ocsp_pki, "down")
        for _ in range(3):
            out, took = handshake(e.port)
            assert stapled(out) is None
            assert took < 2.0
        assert wait_for(lambda: "timed out after 10 s; next request in 60 s"
                        in e.error_log, timeout=15), e.error_log
        assert stapled(handshake(e.port)[0]) is None
    finally:
        hung.close()


def test_revoked_is_stapled_and_logged_at_crit(eddy, ocsp_pki, responder):
    responder("rev")
    e = start(eddy, ocsp_pki, "rev")
    wait_staple(e, "revoked")
    lines = [ln for ln in e.error_log.splitlines() if "[crit]" in ln]
    assert any('OCSP: certificate "%s" is revoked since '
               % (e.prefix / "certs/rev.pem") in ln
               and "its response is stapled" in ln for ln in lines), lines


@pytest.mark.parametrize("kind,message", [
    ("foreign", "the response is not for this certificate"),
    ("expired", "the response expired (nextUpdate "),
    ("garbage", "not a DER OCSP response"),
    ("unsigned", "the response is not signed by the issuer or its delegate"),
])
def test_refused_responses_are_not_stapled(eddy, ocsp_pki, responder, kind,
                                           message):
    r = responder("fake")
    if kind == "foreign":
        r.body = ocsp_pki.response("other", "fake-foreign")
    elif kind == "expired":
        r.body = ocsp_pki.expired("fake", "fake-expired")
    elif kind == "garbage":
        r.body = b"<html>not OCSP</html>"
    else:
        # Signed by a key the CA never certified for OCSP.
        (ocsp_pki.root / "rogue.ext").write_text("basicConstraints=CA:FALSE\n")
        key("rogue", ocsp_pki.root)
        ossl(["req", "-x509", "-new", "-key", "rogue.key", "-subj",
              "/CN=eddy ocsp test ca", "-days", "1", "-out", "rogue.pem"],
             ocsp_pki.root)
        ossl(["ocsp", "-issuer", "ca.pem", "-cert", "fake.crt", "-no_nonce",
              "-reqout", "rogue.req"], ocsp_pki.root)
        ossl(["ocsp", "-index", "index.txt", "-rsigner", "rogue.pem",
              "-rkey", "rogue.key", "-CA", "ca.pem", "-reqin", "rogue.req",
              "-respout", "rogue.der", "-ndays", "1"], ocsp_pki.root)
        r.body = (ocsp_pki.root / "rogue.der").read_bytes()
    e = start(eddy, ocsp_pki, "fake")
    assert wait_for(lambda: message in e.error_log, timeout=10), \
        e.error_log
    assert r.requests == 1
    assert "[error]" in e.error_log
    for _ in range(2):
        out, took = handshake(e.port)
        assert stapled(out) is None
        assert took < 2.0


def test_dump_prints_the_keys(eddy, ocsp_pki):
    e = eddy(CONFIG % {"cert": "srv", "extra": ""}, start=False)
    for ext in ("pem", "key"):
        e.write_file("certs/srv.%s" % ext,
                     (ocsp_pki.root / ("srv." + ext)).read_bytes())
    rc, out, err = run_eddy(["-p", e.prefix, "-c", e.conf_path, "-T"],
                            cwd=e.prefix)
    assert rc == 0, err
    assert "ocsp_stapling: false" in out, out


# -t errors, at the key they are about.

T_CONFIG = """
servers:
  - listen: 127.0.0.1:{port}
    tls:
      certificate: %(pki)s/%(cert)s
      key: %(pki)s/%(key)s
      ocsp_stapling: %(on)s
%(file)s    locations:
      /:
        return: {status: 200}
"""


def t_config(pki, cert="srv.pem", key_="srv.key", on="true", file=None):
    return T_CONFIG % {
        "pki": pki.root, "cert": cert, "key": key_, "on": on,
        "file": "      ocsp_response_file: %s\n" % file if file else ""}


def test_t_stapling_without_the_issuer(prefix, ocsp_pki):
    check_config_error(prefix, t_config(ocsp_pki, cert="nochain.pem"),
                       "true", r"ocsp_stapling: the issuer of certificate "
                       r"\".*nochain.pem\" is not in that file")


def test_t_fetching_without_an_ocsp_url(prefix, ocsp_pki):
    check_config_error(prefix, t_config(ocsp_pki, cert="noaia.pem",
                                        key_="noaia.key"),
                       "true", r"certificate \".*noaia.pem\" has no http "
                       r"OCSP responder URL")


def test_t_a_file_needs_no_url_but_a_known_status(prefix, ocsp_pki):
    # noaia has no OCSP URL, which a file does not need; the responder
    # does not know it: its "unknown" is refused.
    path = prefix / "noaia.ocsp"
    path.write_bytes(ocsp_pki.response("noaia", "noaia-file"))
    text = t_config(ocsp_pki, cert="noaia.pem", key_="noaia.key",
                    file=str(path))
    check_config_error(prefix, text, str(path),
                       r"the certificate's status is \"unknown\"")


@pytest.mark.parametrize("kind,pattern", [
    ("foreign", r"the response is not for this certificate"),
    ("expired", r"the response expired \(nextUpdate "),
    ("garbage", r"not a DER OCSP response"),
    ("missing", r"cannot read .*: No such file or directory"),
])
def test_t_bad_response_files(prefix, ocsp_pki, kind, pattern):
    path = prefix / ("%s.ocsp" % kind)
    if kind == "foreign":
        path.write_bytes(ocsp_pki.response("other", "t-foreign"))
    elif kind == "expired":
        path.write_bytes(ocsp_pki.expired("srv", "t-expired"))
    elif kind == "garbage":
        path.write_bytes(os.urandom(300))
    check_config_error(prefix, t_config(ocsp_pki, file=str(path)), str(path),
                       r"OCSP response file|cannot read", pattern)


def test_t_a_file_needs_stapling_on(prefix, ocsp_pki):
    path = prefix / "srv.ocsp"
    path.write_bytes(ocsp_pki.response("srv", "t-off"))
    check_config_error(prefix, t_config(ocsp_pki, on="false",
                                        file=str(path)), str(path),
                       r'"ocsp_response_file" needs "ocsp_stapling: true"')
