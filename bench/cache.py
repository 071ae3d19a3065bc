#!/usr/bin/python3
"""A cache hit against a static file of the same size (cache.md: "a hit
costs no more CPU than a static file of the same size"), and against
nginx's proxy_cache in the same run: one eddy and one nginx, one worker
each, serving 1 KiB, 100 KiB and 10 MiB files from a static location and
the same files through a proxy location with a cache (same key
$scheme$host$request_uri, same validity 1h, levels 1:2). The origin, a
second server of the same eddy, is asked once per file and server, then
never again. wrk (keep-alive) runs each case in alternating rounds; the
medians of requests/s and of the measured worker's CPU per request
(utime + stime from /proc around each run) are printed, with the ratios
eddy hit/static and eddy hit/nginx hit.

usage: bench/cache.py [ROUNDS [DURATION [BINARY]]]
  defaults: 3 rounds, 5s, objs/eddy; NGINX=/usr/sbin/nginx (NGINX=- to
  leave nginx out)
Needs wrk (apt-get install wrk), nginx for its rows. Installs nothing."""
import os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile
import time, urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
dur = sys.argv[2] if len(sys.argv) > 2 else '5s'
binary = os.path.abspath(sys.argv[3] if len(sys.argv) > 3
                         else os.path.join(TOP, 'objs/eddy'))
nginx = os.environ.get('NGINX', '/usr/sbin/nginx')
if nginx != '-' and not os.access(nginx, os.X_OK):
    print(f'no {nginx}: nginx left out', file=sys.stderr)
    nginx = '-'
TICK = os.sysconf('SC_CLK_TCK')
SIZES = (('1k', 1024), ('100k', 100 * 1024), ('10m', 10 << 20))
PORT, ORIGIN, NPORT = 19080, 19081, 19082

D = tempfile.mkdtemp(prefix='eddy-cache-bench-')
for d in ('html', 'logs', 'conf', 'nginx/logs', 'nginx/tmp'):
    os.makedirs(os.path.join(D, d))
shutil.copy(os.path.join(TOP, 'conf/mime.types'), D + '/conf/mime.types')
for name, size in SIZES:
    with open(f'{D}/html/{name}.bin', 'wb') as f:
        f.write(os.urandom(size))
open(D + '/conf/eddy.yaml', 'w').write(f"""workers: 1
pid_file: logs/eddy.pid
error_log: {{path: logs/error.log, level: warn}}
open_file_cache: {{max: 10000, valid: 30s}}
access_log: off
keepalive_requests: 100000000
caches:
  bench: {{path: {D}/cache, levels: '1:2', max_size: 1g,
           max_entry_size: 100m}}
servers:
  - listen: 127.0.0.1:{PORT}
    root: {D}/html
    locations:
      /static/: {{static: {{alias: {D}/html/}}}}
      /cached/:
        proxy: {{pass: 'http://127.0.0.1:{ORIGIN}/', cache: bench,
                cache_key: '$scheme$host$request_uri',
                cache_valid: {{200: 1h}}}}
  - listen: 127.0.0.1:{ORIGIN}
    root: {D}/html
    locations:
      /: {{static: {{}}}}
""")
N = D + '/nginx'
# As root, nginx's worker would be nobody's, who cannot read the
# temporary directory: it runs as the current user, as eddy does.
USER = 'user root;' if os.geteuid() == 0 else ''
open(N + '/nginx.conf', 'w').write(f"""worker_processes 1; daemon off; {USER}
pid {N}/logs/nginx.pid; error_log {N}/logs/error.log warn;
events {{ worker_connections 10000; }}
http {{
  access_log off; sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000000; default_type application/octet-stream;
  open_file_cache max=10000 inactive=30s; open_file_cache_valid 30s;
  client_body_temp_path {N}/tmp; proxy_temp_path {N}/tmp;
  fastcgi_temp_path {N}/tmp; uwsgi_temp_path {N}/tmp;
  scgi_temp_path {N}/tmp;
  proxy_cache_path {N}/cache levels=1:2 keys_zone=bench:16m max_size=1g
                   inactive=1h;
  server {{
    listen 127.0.0.1:{NPORT};
    location /static/ {{ alias {D}/html/; }}
    location /cached/ {{
      proxy_pass http://127.0.0.1:{ORIGIN}/; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_cache bench;
      proxy_cache_key $scheme$host$request_uri;
      proxy_cache_valid 200 1h; add_header Cache-Status $upstream_cache_status;
    }}
  }}
}}
""")


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(('127.0.0.1', port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f'nothing listens on {port}')


def children(pid):
    return subprocess.run(['pgrep', '-P', str(pid)], capture_output=True,
                          text=True).stdout.split()


procs = [subprocess.Popen([binary, '-p', D, '-c', D + '/conf/eddy.yaml'],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)]
if nginx != '-':
    procs.append(subprocess.Popen([nginx, '-p', N, '-c', N + '/nginx.conf'],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
try:
    wait_port(PORT)
    if nginx != '-':
        wait_port(NPORT)
    time.sleep(0.5)
    # The measured workers: eddy's that is not the cache manager (the
    # origin is a server of the same worker: it is not asked during the
    # runs), nginx's worker process (not its cache manager or loader).
    workers = {'eddy': [int(k) for k in children(procs[0].pid)
                        if b'cache' not in open(f'/proc/{k}/comm',
                                                'rb').read()]}
    ports = {'eddy': PORT}
    if nginx != '-':
        workers['nginx'] = [int(k) for k in children(procs[1].pid)
                            if b'worker' in open(f'/proc/{k}/cmdline',
                                                 'rb').read()]
        ports['nginx'] = NPORT

    def ticks(server):
        t = 0
        for pid in workers[server]:
            f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
            t += int(f[11]) + int(f[12])
        return t

    # Warm the caches, and check every server answers the same bytes.
    for name, _ in SIZES:
        a = urllib.request.urlopen(f'http://127.0.0.1:{PORT}/static/'
                                   f'{name}.bin').read()
        for server, port in ports.items():
            assert urllib.request.urlopen(
                f'http://127.0.0.1:{port}/static/{name}.bin').read() == a
            for _ in range(3):
                r = urllib.request.urlopen(f'http://127.0.0.1:{port}/cached/'
                                           f'{name}.bin')
                b = r.read()
            st = r.headers['Cache-Status'] or ''
            assert a == b and (st.startswith('eddy; hit') or st == 'HIT'), \
                (server, name, st)
    cases = [(s, k) for s in ports for k in ('static', 'cached')]
    res = {}
    for rnd in range(rounds):
        order = cases if rnd % 2 == 0 else cases[::-1]
        for name, _ in SIZES:
            for server, kind in order:
                t0 = ticks(server)
                out = subprocess.run(
                    ['wrk', '-t1', '-c50', '-d' + dur,
                     f'http://127.0.0.1:{ports[server]}/{kind}/{name}.bin'],
                    capture_output=True, text=True).stdout
                t1 = ticks(server)
                m = re.search(r'(\d+) requests in', out)
                n = int(m.group(1)) if m else 0
                us = (t1 - t0) / TICK * 1e6 / n if n else 0
                rps = n / float(dur.rstrip('s'))
                res.setdefault((name, server, kind), []).append((rps, us))
                print(f'round {rnd} {name:5} {server:6} {kind:7} '
                      f'{rps:10.0f} req/s {us:8.2f} us/req'
                      f'{" NON2XX" if "Non-2xx" in out else ""}', flush=True)

    def med(name, server, kind):
        return [statistics.median(x)
                for x in zip(*res[(name, server, kind)])]

    print('\nmedians: requests/s and worker CPU us/request')
    head = f'{"size":5} {"case":13} {"req/s":>9} {"us/req":>7}'
    print(head)
    for name, _ in SIZES:
        for server in ports:
            for kind in ('static', 'cached'):
                rps, us = med(name, server, kind)
                label = f'{server} {"hit" if kind == "cached" else kind}'
                print(f'{name:5} {label:13} {rps:9.0f} {us:7.2f}')
    print('\nratios        eddy hit/static          eddy hit/nginx hit')
    print(f'{"size":5}         req/s   us/req          req/s   us/req')
    for name, _ in SIZES:
        s, c = med(name, 'eddy', 'static'), med(name, 'eddy', 'cached')
        line = (f'{name:5} {c[0] / s[0] if s[0] else 0:13.2f} '
                f'{c[1] / s[1] if s[1] else 0:8.2f}')
        if 'nginx' in ports:
            g = med(name, 'nginx', 'cached')
            line += (f' {c[0] / g[0] if g[0] else 0:14.2f} '
                     f'{c[1] / g[1] if g[1] else 0:8.2f}')
        print(line)
finally:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(10)
    shutil.rmtree(D, ignore_errors=True)
