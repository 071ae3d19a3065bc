#!/usr/bin/python3
"""Server CPU per request, side by side: several eddy binaries (two builds
of eddy, say) and nginx and H2O, one worker each, on loopback, in
alternating rounds; the medians are printed. The CPU is the worker's
utime + stime from /proc around each wrk run, divided by the requests
wrk made: it holds even when wrk is what limits the rate.

usage: bench/cpu.py ROUNDS DURATION CASES NAME=BINARY...
  CASES: a comma list of ka1k (1 KiB keep-alive), close1k (1 KiB,
  Connection: close), ka64k, ka1m, proxy1k (1 KiB through the proxy to
  bench/backend.c, upstream keep-alive).
  NAME=BINARY: an eddy binary (a NAME ending in -rw adds a server
  rewrite rule that does not match, a location rule that matches every
  request with a capture and a map in its replacement, and the map: the
  cost of rewrite + map); the names nginx and h2o start those
  (from PATH; h2o skips proxy1k); nginx-deferred is nginx with
  `listen ... deferred` (TCP_DEFER_ACCEPT, which eddy and H2O set by
  default).
example: bench/cpu.py 5 4s ka1k,close1k,proxy1k old=/tmp/eddy-old \
             new=objs/eddy nginx=- h2o=-
Needs wrk, and nginx / h2o for their columns (apt-get install wrk
nginx-light h2o). Installs nothing."""
import os, subprocess, sys, time, tempfile, shutil, re, signal

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

rounds = int(sys.argv[1]); dur = sys.argv[2]; cases = sys.argv[3].split(',')
bins = [a.split('=', 1) for a in sys.argv[4:]]
TICK = os.sysconf('SC_CLK_TCK')
D = tempfile.mkdtemp(prefix='ab-')
os.makedirs(D + '/html'); os.makedirs(D + '/logs'); os.chmod(D, 0o755); os.chmod(D + '/html', 0o755)
for n, sz in (('1k.bin', 1024), ('64k.bin', 65536), ('1m.bin', 1 << 20)):
    open(D + '/html/' + n, 'wb').write(os.urandom(sz)); os.chmod(D + '/html/' + n, 0o644)
subprocess.run(['cc', '-O2', '-pthread', '-o', D + '/backend', TOP + '/bench/backend.c'], check=True)
backend = subprocess.Popen([D + '/backend', '19990', '1024'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def eddy_conf(port, d, rw=False):
    os.makedirs(d + '/logs', exist_ok=True); os.makedirs(d + '/conf', exist_ok=True)
    shutil.copy(TOP + '/conf/mime.types', d + '/conf/mime.types')
    maps = srv_rw = loc_rw = ''
    if rw:
        maps = """maps:
  sfx: {source: $http_x_variant, default: "", entries: {small: -s, big: -b}}
"""
        srv_rw = """    rewrite: [{regex: "^/old/(.*)$", replacement: /$1, flag: last}]
"""
        loc_rw = """, rewrite: [{regex: "^/([a-z0-9]+)\\\\.bin$", replacement: "/$1$sfx.bin", flag: break}]"""
    open(d + '/conf/eddy.yaml', 'w').write(maps + f"""workers: 1
pid_file: logs/eddy.pid
error_log: {{path: logs/error.log, level: warn}}
open_file_cache: {{max: 10000, valid: 30s}}
events: {{max_connections: 10000}}
access_log: off
keepalive_requests: 100000000
upstreams:
  backend:
    keepalive: 64
    servers: [127.0.0.1:19990]
servers:
  - listen: 127.0.0.1:{port}
    root: {D}/html
{srv_rw}    locations:
      /: {{static: {{}}{loc_rw}}}
      /p/: {{proxy: {{pass: backend}}}}
""")

def start(kind, binpath, port):
    d = f'{D}/{kind}-{port}'
    os.makedirs(d + '/logs', exist_ok=True)
    deferred = ''
    if kind == 'nginx-deferred':
        kind, deferred = 'nginx', ' deferred'
    if kind == 'nginx':
        open(d + '/nginx.conf', 'w').write(f"""worker_processes 1; daemon off; pid {d}/logs/nginx.pid;
error_log {d}/logs/error.log warn; events {{ worker_connections 10000; }}
http {{ access_log off; sendfile on; tcp_nopush on; tcp_nodelay on; keepalive_requests 100000000;
open_file_cache max=10000 inactive=30s; open_file_cache_valid 30s; default_type application/octet-stream;
client_body_temp_path {d}/logs; proxy_temp_path {d}/logs; fastcgi_temp_path {d}/logs; uwsgi_temp_path {d}/logs; scgi_temp_path {d}/logs;
upstream backend {{ server 127.0.0.1:19990; keepalive 64; }}
server {{ listen 127.0.0.1:{port}{deferred}; root {D}/html; location / {{ }}
location /p/ {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}""")
        p = subprocess.Popen(['nginx', '-p', d, '-c', d + '/nginx.conf'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elif kind == 'h2o':
        open(d + '/h2o.conf', 'w').write(f"""num-threads: 1
listen: {{host: 127.0.0.1, port: {port}}}
error-log: {d}/logs/error.log
file.send-compressed: OFF
hosts:
  default:
    paths:
      /: {{file.dir: {D}/html}}
""")
        p = subprocess.Popen(['h2o', '-c', d + '/h2o.conf'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        eddy_conf(port, d, kind == 'eddy-rw')
        p = subprocess.Popen([os.path.abspath(binpath), '-p', d, '-c', d + '/conf/eddy.yaml'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            import socket; socket.create_connection(('127.0.0.1', port), 0.2).close(); break
        except OSError: time.sleep(0.05)
    time.sleep(0.3)
    kids = subprocess.run(['pgrep', '-P', str(p.pid)], capture_output=True, text=True).stdout.split()
    workers = [int(k) for k in kids] + [p.pid]
    return p, workers

def ticks(pids):
    t = 0
    for pid in pids:
        f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
        t += int(f[11]) + int(f[12])
    return t

CASES = {'ka1k': ('1k.bin', []), 'close1k': ('1k.bin', ['-H', 'Connection: close']),
         'ka64k': ('64k.bin', []), 'ka1m': ('1m.bin', []), 'proxy1k': ('p/x', [])}
res = {}
servers = []
port = 19000
for name, b in bins:
    kind = name if name in ('nginx', 'nginx-deferred', 'h2o') else \
        'eddy-rw' if name.endswith('-rw') else 'eddy'
    servers.append((name, kind, b, port)); port += 1
running = {}
for name, kind, b, port in servers:
    running[name] = start(kind, b, port)
try:
    for rnd in range(rounds):
        order = servers if rnd % 2 == 0 else servers[::-1]
        for c in cases:
            path, extra = CASES[c]
            for name, kind, b, port in order:
                if kind == 'h2o' and c == 'proxy1k':
                    continue
                p, workers = running[name]
                t0 = ticks(workers)
                out = subprocess.run(['wrk', '-t1', '-c50', '-d' + dur] + extra + [f'http://127.0.0.1:{port}/{path}'], capture_output=True, text=True).stdout
                t1 = ticks(workers)
                m = re.search(r'(\d+) requests in', out)
                n = int(m.group(1)) if m else 0
                bad = 'Non-2xx' in out
                us = (t1 - t0) / TICK * 1e6 / n if n else 0
                res.setdefault((c, name), []).append(us)
                print(f'round {rnd} {c:8} {name:8} {n/float(dur.rstrip("s")):10.0f} req/s {us:7.2f} us/req{" NON2XX" if bad else ""}', flush=True)
finally:
    for p, w in running.values():
        p.send_signal(signal.SIGTERM)
    backend.kill()
    time.sleep(0.5)
    shutil.rmtree(D, ignore_errors=True)
import statistics
print('\nmedian us/request')
for c in cases:
    print(c, '  '.join(f'{name}={statistics.median(res[(c, name)]):.2f}' for name, *_ in servers if (c, name) in res))
