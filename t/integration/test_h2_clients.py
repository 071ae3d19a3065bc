"""HTTP/2 with real clients (spec/http2.md, Tests): curl with prior
knowledge and over TLS (ALPN), nghttp fetching a page and its assets,
a proxied upload, byte-exact; h2load trips no limit. Each is skipped
only when the tool is missing (configure --install-deps installs
nghttp2-client and curl)."""

import hashlib
import os
import re
import shutil
import subprocess

import pytest

from proxy_backend import Backend, response
from tlsutil import pki  # noqa: F401 (a fixture)

CURL = shutil.which("curl")
NGHTTP = shutil.which("nghttp")
H2LOAD = shutil.which("h2load")

ASSET = os.urandom(150 * 1024)
PAGE = b'<html><img src="/a.bin"><link rel="stylesheet" href="/s.css"></html>\n'
CSS = b"body { color: red }\n" * 100

CONFIG = r"""
workers: 1
error_log: {path: logs/error.log, level: info}
servers:
  - listen: [{address: "127.0.0.1:{port0}", http2: true}]
    root: html
    keepalive_requests: 100000
    locations:
      /:
        static: {}
      /up/:
        proxy: {pass: "http://127.0.0.1:@BACKEND@"}
  - listen: [{address: "127.0.0.1:{port1}"}]
    names: [default.test]
    root: html
    tls: {certificate: certs/default.pem, key: certs/default.key}
    locations:
      /:
        static: {}
"""


def start(eddy, pki, backend=1):  # noqa: F811
    e = eddy(CONFIG.replace("@BACKEND@", str(backend)), ports=2, start=False)
    e.write_file("html/index.html", PAGE)
    e.write_file("html/a.bin", ASSET)
    e.write_file("html/s.css", CSS)
    e.write_file("certs/default.pem", (pki.root / "default.pem").read_bytes())
    e.write_file("certs/default.key", (pki.root / "default.key").read_bytes())
    return e.start()


def run(args, timeout=30):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_prior_knowledge(eddy, pki, tmp_path):  # noqa: F811
    e = start(eddy, pki)
    out = tmp_path / "a.bin"
    rc, so, se = run([CURL, "-sS", "--http2-prior-knowledge", "-o", str(out),
                      "-w", "%{http_version} %{http_code}",
                      "http://127.0.0.1:%d/a.bin" % e.port])
    assert rc == 0, se
    assert so == b"2 200"
    assert out.read_bytes() == ASSET


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_alpn_over_tls(eddy, pki, tmp_path):  # noqa: F811
    e = start(eddy, pki)
    port1 = int(e.format("{port1}"))
    out = tmp_path / "a.bin"
    rc, so, se = run([CURL, "-sS", "--http2", "--cacert", pki.ca,
                      "--resolve", "default.test:%d:127.0.0.1" % port1,
                      "-o", str(out), "-w", "%{http_version} %{http_code}",
                      "https://default.test:%d/a.bin" % port1])
    assert rc == 0, se
    assert so == b"2 200"
    assert out.read_bytes() == ASSET


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_proxied_upload(eddy, pki, tmp_path):  # noqa: F811
    body = os.urandom(300 * 1024)
    got = []

    def handler(req, conn):
        got.append(req.body)
        return response(200, hashlib.sha256(req.body).hexdigest().encode())

    with Backend(handler) as b:
        e = start(eddy, pki, b.port)
        f = tmp_path / "up.bin"
        f.write_bytes(body)
        rc, so, se = run([CURL, "-sS", "--http2-prior-knowledge",
                          "--data-binary", "@" + str(f),
                          "http://127.0.0.1:%d/up/x" % e.port])
        assert rc == 0, se
        assert so == hashlib.sha256(body).hexdigest().encode()
        assert got[-1] == body


@pytest.mark.skipif(NGHTTP is None, reason="nghttp is not installed")
def test_nghttp_page_and_assets(eddy, pki):  # noqa: F811
    e = start(eddy, pki)
    rc, so, se = run([NGHTTP, "-nas", "http://127.0.0.1:%d/index.html"
                      % e.port])
    assert rc == 0, se
    text = so.decode()
    # -a fetched the assets the page links to; -s prints their statistics.
    for path in ("/index.html", "/a.bin", "/s.css"):
        assert re.search(r"200\s+.*%s" % re.escape(path), text) or \
            path in text, text
    rc, so, se = run([NGHTTP, "http://127.0.0.1:%d/a.bin" % e.port])
    assert rc == 0, se
    assert so == ASSET


@pytest.mark.skipif(H2LOAD is None, reason="h2load is not installed")
def test_h2load_trips_no_limit(eddy, pki):  # noqa: F811
    e = start(eddy, pki)
    rc, so, se = run([H2LOAD, "-n", "5000", "-c", "4", "-m", "50",
                      "http://127.0.0.1:%d/s.css" % e.port], timeout=60)
    assert rc == 0, se
    text = so.decode()
    assert re.search(r"requests: 5000 total, 5000 started, 5000 done, "
                     r"5000 succeeded, 0 failed, 0 errored", text), text
    assert "flood" not in e.error_log
