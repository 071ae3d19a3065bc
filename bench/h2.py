#!/usr/bin/python3
"""HTTP/2, side by side (spec/http2.md, Tests and benchmark): eddy,
nginx and H2O, one worker each, on loopback, h2load as the client, in
alternating rounds; medians of requests/s and server CPU per request
(utime + stime of every server process from /proc around each run,
divided by the requests done; user and system time apart too). eddy
h2 against eddy HTTP/1.1 (h2load --h1) is a row too.

usage: bench/h2.py ROUNDS REQUESTS [CASES]
  CASES: a comma list of
    tls1k, h2c1k, tls64k, h2c64k   static files, -c 16 -m 32
    proxy1k                        1 KiB through the proxy (h2c) to
                                   bench/backend.c, -c 16 -m 32
    c64m10, c256m1, c16m100        1 KiB over TLS with those -c/-m
  (default: all)
example: bench/h2.py 3 200000
Needs h2load (nghttp2-client), openssl, and nginx / h2o for their
columns (apt-get install nghttp2-client nginx-light h2o). keepalive
limits are raised everywhere (h2load does not reconnect after a
GOAWAY). Installs nothing.
environment: EDDY (objs/eddy), or NAME=BINARY,... for several builds
  (each gets its rows, and NAME-h1 for HTTP/1.1); KEEPALIVE (1024): idle upstream connections eddy and nginx
  keep per worker. h2load -c16 -m32 keeps 512 proxied requests in
  flight and H2O 2.2 pools upstream connections without a bound: with
  fewer (64, say) eddy and nginx close most connections a burst of
  answers releases and open new ones for the next burst, and the row
  measures TCP handshakes rather than proxying. TLS13_SUITE
  (TLS_AES_128_GCM_SHA256): the one TLS 1.3 suite h2load offers to
  every server."""
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# EDDY: a binary, or NAME=BINARY,NAME=BINARY to compare builds in one run.
EDDYS = [e.split("=", 1) if "=" in e else ["eddy", e]
         for e in os.environ.get("EDDY", TOP + "/objs/eddy").split(",")]
EDDY_BIN = {name: path for name, path in EDDYS}
TICK = os.sysconf("SC_CLK_TCK")
KEEPALIVE = int(os.environ.get("KEEPALIVE", "1024"))

TLS13_SUITE = os.environ.get("TLS13_SUITE", "TLS_AES_128_GCM_SHA256")

CASES = {
    "tls1k": ("tls", "1k.bin", ["-c16", "-m32"]),
    "h2c1k": ("h2c", "1k.bin", ["-c16", "-m32"]),
    "tls64k": ("tls", "64k.bin", ["-c16", "-m32"]),
    "h2c64k": ("h2c", "64k.bin", ["-c16", "-m32"]),
    "proxy1k": ("h2c", "p/x", ["-c16", "-m32"]),
    "c64m10": ("tls", "1k.bin", ["-c64", "-m10"]),
    "c256m1": ("tls", "1k.bin", ["-c256", "-m1"]),
    "c16m100": ("tls", "1k.bin", ["-c16", "-m100"]),
}

rounds = int(sys.argv[1])
nreq = int(sys.argv[2])
cases = sys.argv[3].split(",") if len(sys.argv) > 3 else list(CASES)
D = tempfile.mkdtemp(prefix="h2bench-")
os.chmod(D, 0o755)
os.makedirs(D + "/html")
os.chmod(D + "/html", 0o755)
for n, sz in (("1k.bin", 1024), ("64k.bin", 65536)):
    open(D + "/html/" + n, "wb").write(os.urandom(sz))
    os.chmod(D + "/html/" + n, 0o644)
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-keyout", D + "/key.pem",
                "-out", D + "/cert.pem", "-days", "2", "-subj", "/CN=bench"],
               check=True, capture_output=True)
subprocess.run(["cc", "-O2", "-pthread", "-o", D + "/backend",
                TOP + "/bench/backend.c"], check=True)
backend = subprocess.Popen([D + "/backend", "19990", "1024"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def start(kind, h2c, tls):
    eddy_bin = EDDY_BIN.get(kind)
    d = "%s/%s" % (D, kind)
    os.makedirs(d + "/logs", exist_ok=True)
    if kind == "nginx":
        open(d + "/nginx.conf", "w").write(f"""worker_processes 1;
daemon off; pid {d}/logs/nginx.pid; error_log {d}/logs/error.log warn;
events {{ worker_connections 10000; }}
http {{ access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
keepalive_requests 100000000; http2_max_requests 100000000;
open_file_cache max=10000 inactive=30s; open_file_cache_valid 30s;
default_type application/octet-stream;
client_body_temp_path {d}/logs; proxy_temp_path {d}/logs;
fastcgi_temp_path {d}/logs; uwsgi_temp_path {d}/logs;
scgi_temp_path {d}/logs;
upstream backend {{ server 127.0.0.1:19990; keepalive {KEEPALIVE}; }}
server {{ listen 127.0.0.1:{h2c} http2;
  listen 127.0.0.1:{tls} ssl http2;
  ssl_certificate {D}/cert.pem; ssl_certificate_key {D}/key.pem;
  root {D}/html; location / {{ }}
  location /p/ {{ proxy_pass http://backend; proxy_http_version 1.1;
    proxy_set_header Connection ""; }} }} }}""")
        cmd = ["nginx", "-p", d, "-c", d + "/nginx.conf"]
    elif kind == "h2o":
        open(d + "/h2o.conf", "w").write(f"""num-threads: 1
listen: {{host: 127.0.0.1, port: {h2c}}}
listen:
  host: 127.0.0.1
  port: {tls}
  ssl: {{certificate-file: {D}/cert.pem, key-file: {D}/key.pem}}
error-log: {d}/logs/error.log
file.send-compressed: OFF
http2-idle-timeout: 600
hosts:
  default:
    paths:
      /: {{file.dir: {D}/html}}
      /p: {{proxy.reverse.url: "http://127.0.0.1:19990/p"}}
""")
        cmd = ["h2o", "-c", d + "/h2o.conf"]
    else:
        os.makedirs(d + "/conf", exist_ok=True)
        shutil.copy(TOP + "/conf/mime.types", d + "/conf/mime.types")
        open(d + "/conf/eddy.yaml", "w").write(f"""workers: 1
pid_file: logs/eddy.pid
error_log: {{path: logs/error.log, level: warn}}
open_file_cache: {{max: 10000, valid: 30s}}
events: {{max_connections: 10000}}
access_log: off
keepalive_requests: 100000000
upstreams:
  backend:
    keepalive: {KEEPALIVE}
    servers: [127.0.0.1:19990]
servers:
  - listen: [{{address: "127.0.0.1:{h2c}", http2: true, tls: false}},
             {{address: "127.0.0.1:{tls}", tls: true}}]
    tls: {{certificate: {D}/cert.pem, key: {D}/key.pem}}
    root: {D}/html
    locations:
      /: {{static: {{}}}}
      /p/: {{proxy: {{pass: backend}}}}
""")
        cmd = [os.path.abspath(eddy_bin), "-p", d, "-c",
               d + "/conf/eddy.yaml"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    for port in (h2c, tls):
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    time.sleep(0.3)
    kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                          text=True).stdout.split()
    return p, [int(k) for k in kids] + [p.pid]


def ticks(pids):
    """utime and stime of the processes, in clock ticks."""
    u = s = 0
    for pid in pids:
        try:
            f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        u += int(f[11])
        s += int(f[12])
    return u, s


servers = [(name, 19110 + 2 * i, 19111 + 2 * i)
           for i, (name, _) in enumerate(EDDYS)]
servers += [s for s in (("nginx", 19102, 19103), ("h2o", 19104, 19105))
            if shutil.which(s[0])]
running = {name: start(name, h2c, tls) for name, h2c, tls in servers}
rows = []
for c in cases:
    rows += [(c, name) for name, *_ in servers]
    if c in ("tls1k", "h2c1k"):
        rows += [(c, name + "-h1") for name, _ in EDDYS]
res = {}
try:
    for rnd in range(rounds):
        order = rows if rnd % 2 == 0 else rows[::-1]
        for c, name in order:
            mode, path, extra = CASES[c]
            srv = name[:-3] if name.endswith("-h1") else name
            _, h2c, tls = next(s for s in servers if s[0] == srv)
            url = ("https://127.0.0.1:%d/%s" % (tls, path) if mode == "tls"
                   else "http://127.0.0.1:%d/%s" % (h2c, path))
            if mode == "tls":
                # One suite for every server: the rows compare servers,
                # not ciphers.
                extra = extra + ["--tls13-ciphers=" + TLS13_SUITE]
            if name.endswith("-h1"):
                extra = extra + ["--h1"]
            p, workers = running[srv]
            t0 = ticks(workers)
            out = subprocess.run(["h2load", "-n", str(nreq)] + extra + [url],
                                 capture_output=True, text=True).stdout
            t1 = ticks(workers)
            m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
            ok = re.search(r"(\d+) succeeded, (\d+) failed", out)
            n = int(ok.group(1)) if ok else 0
            rps = float(m.group(1)) if m else 0.0
            k = TICK / 1e6 * n if n else 0.0
            usr = (t1[0] - t0[0]) / k if n else 0.0
            sys_ = (t1[1] - t0[1]) / k if n else 0.0
            us = usr + sys_
            res.setdefault((c, name), []).append((rps, us, usr, sys_))
            bad = "" if ok and ok.group(2) == "0" else " FAILED"
            print("round %d %-8s %-8s %10.0f req/s %7.2f us/req "
                  "(user %.2f, sys %.2f)%s"
                  % (rnd, c, name, rps, us, usr, sys_, bad), flush=True)
finally:
    for p, w in running.values():
        p.send_signal(signal.SIGTERM)
    backend.kill()
    time.sleep(0.5)
    shutil.rmtree(D, ignore_errors=True)
print("\nmedians: req/s, server CPU us/request (user, sys)")
for c, name in rows:
    v = res.get((c, name))
    if v:
        print("%-8s %-8s %10.0f %8.2f (%.2f, %.2f)" % (
            c, name, statistics.median(x[0] for x in v),
            statistics.median(x[1] for x in v),
            statistics.median(x[2] for x in v),
            statistics.median(x[3] for x in v)))
