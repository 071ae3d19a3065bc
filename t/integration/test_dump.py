"""-T, --provenance and the memory budget (operator.md "-T, --provenance
and the memory budget", and the checks table's "memory" row)."""

import hashlib
import re
import resource
import socket
import ssl
import subprocess
import time

import pytest

from conftest import EDDY_BIN, format_config, free_port, run_eddy
from tlsutil import pki  # noqa: F401 (a fixture)

CONF = """
workers: 1
error_log: stderr
pid_file: logs/eddy.pid
events: {max_connections: 4000}
upstreams:
  app:
    servers: [127.0.0.1:9001, {address: 127.0.0.1:9002, weight: 2}]
    health_check:
servers:
  - listen: 127.0.0.1:{port}
    root: html
    gzip: true
    locations:
      /:
        static: true
      /api/:
        proxy: {pass: app}
      /x/:
        static: {index: [a.html]}
        keepalive_timeout: 5s
"""


def write(prefix, name, text, port=None):
    path = prefix / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_config(text, [port or free_port()], prefix))
    return path


def dump(prefix, *flags, conf="conf/eddy.yaml", env=None):
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-T"] + list(flags),
                            cwd=prefix, env=env)
    assert rc == 0, err
    return out


def block(out, start, indent):
    """The lines under the line equal to start, at the given indent."""
    lines = out.splitlines()
    i = lines.index(start)
    got = []
    for ln in lines[i + 1:]:
        if not ln.startswith(" " * indent) or ln[indent] == " ":
            if ln.startswith(" " * indent) and ln[indent] == " ":
                continue
            break
        got.append(ln.strip())
    return got


def test_dump_shows_defaults_in_blocks(prefix):
    write(prefix, "conf/eddy.yaml", CONF)
    out = dump(prefix)
    # static: true at a location, expanded with every default.
    assert "        static:\n          index: index.html\n" \
           "          autoindex: false\n          etag: true\n" in out
    # gzip: true is {enabled: true} with the other keys' defaults.
    assert "    gzip:\n      enabled: true\n      level: 5\n" \
           "      min_length: 256\n" in out
    # A listen address is written as a map.
    assert "  - listen:\n      - address: 127.0.0.1:" in out
    assert "        default: false\n        backlog: 511\n" \
           "        tls: false\n" in out
    # proxy and health_check blocks in full.
    assert "          connect_timeout: 5s\n" in out
    assert "          next_upstream_tries: 3\n" in out
    assert "    health_check:\n      path: /\n      interval: 5s\n" in out
    assert "        weight: 1\n        max_fails: 1\n" in out
    # Location level: inherited values repeated, its own kept.
    loc = out[out.index("      /x/:\n"):]
    assert "        root: html\n" in loc
    assert "        keepalive_timeout: 5s\n" in loc
    assert "        client_max_body_size: 1m\n" in loc
    assert "        gzip:\n          enabled: true\n" in loc
    # events and the main level's defaults.
    assert "events:\n  max_connections: 4000\n  accept: exclusive\n" in out
    assert "\nshutdown_timeout: 10s\n" in out


def test_dump_tls_block_defaults(prefix, pki):
    write(prefix, "conf/eddy.yaml", """
workers: 1
pid_file: logs/eddy.pid
servers:
  - listen: 127.0.0.1:{port}
    tls: {certificate: %s, key: %s}
    locations:
      /:
        return: 204
""" % (pki.path("a.pem"), pki.path("a.key")))
    out = dump(prefix)
    assert "    tls:\n      certificate: " in out
    assert "      session_tickets: true\n" in out
    assert "        tls: true\n" in out   # the listen item, from tls
    assert "tls_ticket_keys 4 KiB" in out


def test_dump_sha256_line(prefix):
    write(prefix, "conf/eddy.yaml", CONF)
    out = dump(prefix)
    first, rest = out.split("\n", 1)
    m = re.fullmatch(r"# sha256: ([0-9a-f]{64})", first)
    assert m, first
    yaml = "".join(ln + "\n" for ln in rest.splitlines()
                   if not ln.startswith("#"))
    assert hashlib.sha256(yaml.encode()).hexdigest() == m.group(1)
    # --provenance adds comments only: the same hash.
    prov = dump(prefix, "--provenance")
    assert prov.split("\n", 1)[0] == first


def test_dump_round_trip(prefix):
    write(prefix, "conf/eddy.yaml", CONF)
    out = dump(prefix)
    (prefix / "conf/dumped.yaml").write_text(out)
    again = dump(prefix, conf="conf/dumped.yaml")
    assert again == out
    prov = dump(prefix, "--provenance")
    (prefix / "conf/dumped2.yaml").write_text(prov)
    assert dump(prefix, conf="conf/dumped2.yaml") == out


def test_provenance_needs_T(prefix):
    write(prefix, "conf/eddy.yaml", CONF)
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t",
                             "--provenance"], cwd=prefix)
    assert rc == 1
    assert err.splitlines()[0] == "eddy: --provenance needs -T"


RICH = """
workers: 2
pid_file: logs/eddy.pid
open_file_cache: off
access_log: {path: logs/access.log, format: json}
servers:
  - listen: [8080, {address: "127.0.0.1:{port}", default: true}]
    names: [a.example]
    static: false
    error_pages: {404: /404.html}
    headers: {set: {X-A: b}}
    access: [{allow: 127.0.0.1}, {deny: all}]
    limit_req: {rate: 10r/s, burst: 5}
    locations:
      = /r:
        return: {status: 200, body: hi}
      = /x:
        redirect: {to: /y, status: 302}
      = /st:
        status: json
      ~ \\.php$:
        return: 403
"""


def yaml_part(out):
    return [ln for ln in out.splitlines() if not ln.startswith("#")]


def test_dump_round_trip_rich(prefix):
    write(prefix, "conf/eddy.yaml", RICH)
    out = dump(prefix)
    (prefix / "conf/dumped.yaml").write_text(out)
    again = dump(prefix, conf="conf/dumped.yaml")
    # The estimate names limit_req's zone by its position in the file
    # loaded; the YAML and its hash are the same.
    assert again.split("\n", 1)[0] == out.split("\n", 1)[0]
    assert yaml_part(again) == yaml_part(out)
    # Scalars standing for "off" stay; addresses as eddy names them.
    assert "\nopen_file_cache: off\n" in out
    assert "\n    static: false\n" in out
    assert "\n  - listen:\n      - address: 0.0.0.0:8080\n" in out
    # An inherited limit_req is not repeated (it would be a new zone).
    assert out.count("limit_req:") == 1
    assert "        access:\n          - allow: 127.0.0.1\n" in out


def test_provenance_marks_set_default_inherited(prefix):
    write(prefix, "conf/eddy.yaml", CONF)
    out = dump(prefix, "--provenance")
    assert "\nshutdown_timeout: 10s  # default\n" in out
    assert "\nworkers: 1  # conf/eddy.yaml:1:10\n" in out
    assert "    root: html  # conf/eddy.yaml:11:11\n" in out
    loc = out[out.index("      /x/:"):]
    assert "        root: html  # inherited from server at " \
           "conf/eddy.yaml:11\n" in loc
    assert "        keepalive_timeout: 5s  # conf/eddy.yaml:20:28\n" in loc
    assert "        gzip:  # inherited from server at conf/eddy.yaml:12\n" \
           in loc
    assert "          level: 5  # default\n" in loc
    assert "  max_connections: 4000  # conf/eddy.yaml:4:27\n" in out
    assert "        backlog: 511  # default\n" in out


ESTIMATE = [
    r"# memory estimate: 1 worker",
    r"#   per worker, 4000 idle connections: [\d.]+ (KiB|MiB) plain "
    r"\((\d+) B each\), [\d.]+ MiB if all TLS \([\d.]+ KiB each\)",
    r"#   per worker: fixed [\d.]+ KiB \(events, connection and request "
    r"pools\), upstream keep-alive 0 B, open_file_cache up to [\d.]+ MiB",
    r"#   per active request, up to: 8 KiB head, 128 KiB proxy buffers, "
    r"\d+ KiB gzip",
    r"#   shared memory: stats \d+ KiB, upstreams 4 KiB",
    r"#   total, max_connections idle: [\d.]+ MiB \(1 × [\d.]+ MiB \+ "
    r"\d+ KiB\); [\d.]+ MiB with an empty file cache",
]


def test_estimate_at_t_and_T(prefix):
    write(prefix, "conf/eddy.yaml", CONF)
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t"],
                            cwd=prefix, env={"EDDY_MEMORY_LIMIT": ""})
    assert rc == 0, err
    lines = err.splitlines()
    assert len(lines) == len(ESTIMATE) + 1, err
    for pat, ln in zip(ESTIMATE, lines):
        assert re.fullmatch(pat, ln), (pat, ln)
    assert lines[-1] == ("eddy: configuration file conf/eddy.yaml test is "
                         "successful")
    # -q: nothing.
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t",
                             "-q"], cwd=prefix)
    assert rc == 0 and err == ""
    # -T: the same lines after the sha256 line.
    out = dump(prefix).splitlines()
    assert out[1:1 + len(ESTIMATE)] == lines[:len(ESTIMATE)]


def test_limit_req_zone_named_by_position(prefix):
    write(prefix, "conf/eddy.yaml", """
workers: 2
pid_file: logs/eddy.pid
servers:
  - listen: 127.0.0.1:{port}
    limit_req: {rate: 10r/s}
    locations:
      /:
        return: 204
""")
    out = dump(prefix)
    assert re.search(r"#   shared memory: stats \d+ KiB, limit_req "
                     r"conf/eddy.yaml:5:16 \d+ KiB\n", out), out
    assert "# memory estimate: 2 workers\n" in out


def test_memory_warning_over_the_limit(prefix):
    write(prefix, "conf/eddy.yaml", CONF)
    env = {"EDDY_MEMORY_LIMIT": "10m"}
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t"],
                            cwd=prefix, env=env)
    assert rc == 0, err
    warn = [ln for ln in err.splitlines() if "warning" in ln]
    assert len(warn) == 1 and re.fullmatch(
        r"eddy: warning: estimated memory [\d.]+ MiB exceeds the 10.0 MiB "
        r"available \(EDDY_MEMORY_LIMIT\)", warn[0]), err
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t",
                             "--strict"], cwd=prefix, env=env)
    assert rc == 1, err
    # Under the limit: no warning.
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-t",
                             "--strict"], cwd=prefix,
                            env={"EDDY_MEMORY_LIMIT": "100g"})
    assert rc == 0 and "warning" not in err, err


def private_kib(pid):
    total = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for ln in f:
            if ln.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(ln.split()[1])
    return total


def skip_sanitizers(eddy_binary=EDDY_BIN):
    """Memory figures are the plain build's: ASan's redzones and
    quarantine make a sanitizer build's worker grow several times more."""
    v = subprocess.run([str(eddy_binary), "-V"], capture_output=True,
                       text=True, timeout=10).stdout
    if "--with-sanitizers" in v:
        pytest.skip("memory is measured on a build without sanitizers")


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 500
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low" % hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def measure_idle(e, n, wrap=None):
    """A worker's private memory growth (bytes) while the test holds n
    keep-alive connections, each idle after one request; measured from a
    worker already warmed by 50 such connections."""
    pid = e.wait_workers(1)[0]
    req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"

    def idle_conn():
        s = socket.create_connection(("127.0.0.1", e.port), timeout=5)
        if wrap:
            s = wrap(s)
        s.sendall(req)
        buf = b""
        while not buf.endswith(b"ok"):
            chunk = s.recv(4096)
            assert chunk
            buf += chunk
        return s

    warm = [idle_conn() for _ in range(50)]
    socks = []
    try:
        time.sleep(0.2)
        before = private_kib(pid)
        deadline = time.monotonic() + 40
        for _ in range(n):
            socks.append(idle_conn())
            assert time.monotonic() < deadline
        time.sleep(0.3)
        after = private_kib(pid)
    finally:
        for s in socks + warm:
            s.close()
    return (after - before) * 1024


IDLE_CONF = """
workers: 1
error_log: stderr
events: {max_connections: 4000}
servers:
  - listen: 127.0.0.1:{port}
    keepalive_requests: 100
    %s
    locations:
      /:
        return: {status: 200, body: "ok"}
"""


def test_estimate_matches_idle_connections(eddy):
    """A worker holding 2,000 idle plain keep-alive connections grows by
    the printed per-connection figure x 2,000, within 25 %. The fixed
    part is in the baseline (a started, warmed worker), so the growth is
    compared with the per-connection part alone."""
    skip_sanitizers()
    n = 2000
    raise_nofile(n)
    e = eddy(IDLE_CONF % "")
    rc, out, err = run_eddy(["-p", e.prefix, "-c", e.conf_path, "-t"],
                            cwd=e.prefix)
    m = re.search(r"plain \((\d+) B each\)", err)
    assert m, err
    grown = measure_idle(e, n)
    expect = int(m.group(1)) * n
    assert abs(grown - expect) <= 0.25 * grown, (grown, expect)


def test_tls_estimate_matches_idle_connections(eddy, pki):
    """The same for TLS connections (TLS 1.3, each idle after one
    request) and the "if all TLS" figure."""
    skip_sanitizers()
    n = 2000
    raise_nofile(n)
    e = eddy(IDLE_CONF % ("tls: {certificate: %s, key: %s}"
                          % (pki.path("a.pem"), pki.path("a.key"))))
    rc, out, err = run_eddy(["-p", e.prefix, "-c", e.conf_path, "-t"],
                            cwd=e.prefix)
    m = re.search(r"if all TLS \(([\d.]+) KiB each\)", err)
    assert m, err
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    grown = measure_idle(e, n, lambda s: ctx.wrap_socket(s))
    expect = float(m.group(1)) * 1024 * n
    # The spec's 25 % bound is for plain connections; TLS memory also
    # depends on malloc's arenas after 2,000 handshakes at once (seen up
    # to +45 % on a loaded machine): within 50 %.
    assert abs(grown - expect) <= 0.5 * grown, (grown, expect)
