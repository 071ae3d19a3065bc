#!/usr/bin/python3
"""A cache hit against a static file of the same size (cache.md:
"a hit costs no more CPU than a static file of the same size"): one
eddy, one worker, serving 1 KiB, 100 KiB and 10 MiB files from a static
location, and the same files through a proxy location with a cache whose
origin (a second server of the same eddy) is asked once per file, then
never again. wrk runs each case in alternating rounds; the medians of
requests/s and of the worker's CPU per request (utime + stime from
/proc around each run) are printed, with hit/static ratios.

usage: bench/cache.py [ROUNDS [DURATION [BINARY]]]
  defaults: 3 rounds, 5s, objs/eddy
Needs wrk (apt-get install wrk). Installs nothing."""
import os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile
import time, urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
dur = sys.argv[2] if len(sys.argv) > 2 else '5s'
binary = os.path.abspath(sys.argv[3] if len(sys.argv) > 3
                         else os.path.join(TOP, 'objs/eddy'))
TICK = os.sysconf('SC_CLK_TCK')
SIZES = (('1k', 1024), ('100k', 100 * 1024), ('10m', 10 << 20))
PORT, ORIGIN = 19080, 19081

D = tempfile.mkdtemp(prefix='eddy-cache-bench-')
for d in ('html', 'logs', 'conf'):
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
  bench: {{path: {D}/cache, max_size: 1g, max_entry_size: 100m}}
servers:
  - listen: 127.0.0.1:{PORT}
    root: {D}/html
    locations:
      /static/: {{static: {{alias: {D}/html/}}}}
      /cached/:
        proxy: {{pass: 'http://127.0.0.1:{ORIGIN}/', cache: bench,
                cache_valid: {{200: 1h}}}}
  - listen: 127.0.0.1:{ORIGIN}
    root: {D}/html
    locations:
      /: {{static: {{}}}}
""")
p = subprocess.Popen([binary, '-p', D, '-c', D + '/conf/eddy.yaml'],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            socket.create_connection(('127.0.0.1', PORT), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.5)
    kids = subprocess.run(['pgrep', '-P', str(p.pid)], capture_output=True,
                          text=True).stdout.split()
    # The worker: the child that is not the cache manager.
    worker = [int(k) for k in kids
              if b'cache manager' not in open(f'/proc/{k}/cmdline',
                                              'rb').read()]

    def ticks():
        t = 0
        for pid in worker:
            f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
            t += int(f[11]) + int(f[12])
        return t

    # Warm the cache, and check both answer the same bytes.
    for name, _ in SIZES:
        a = urllib.request.urlopen(f'http://127.0.0.1:{PORT}/static/'
                                   f'{name}.bin').read()
        for _ in range(2):
            r = urllib.request.urlopen(f'http://127.0.0.1:{PORT}/cached/'
                                       f'{name}.bin')
            b = r.read()
        assert a == b and r.headers['Cache-Status'].startswith('eddy; hit'),\
            (name, r.headers['Cache-Status'])
    res = {}
    for rnd in range(rounds):
        order = ('static', 'cached') if rnd % 2 == 0 else ('cached', 'static')
        for name, _ in SIZES:
            for kind in order:
                t0 = ticks()
                out = subprocess.run(
                    ['wrk', '-t1', '-c50', '-d' + dur,
                     f'http://127.0.0.1:{PORT}/{kind}/{name}.bin'],
                    capture_output=True, text=True).stdout
                t1 = ticks()
                m = re.search(r'(\d+) requests in', out)
                n = int(m.group(1)) if m else 0
                us = (t1 - t0) / TICK * 1e6 / n if n else 0
                rps = n / float(dur.rstrip('s'))
                res.setdefault((name, kind), []).append((rps, us))
                print(f'round {rnd} {name:5} {kind:7} {rps:10.0f} req/s '
                      f'{us:8.2f} us/req'
                      f'{" NON2XX" if "Non-2xx" in out else ""}', flush=True)
    print('\nmedians        static req/s  us/req   hit req/s  us/req   '
          'hit/static req/s')
    for name, _ in SIZES:
        s = [statistics.median(x) for x in zip(*res[(name, 'static')])]
        c = [statistics.median(x) for x in zip(*res[(name, 'cached')])]
        print(f'{name:5} {s[0]:18.0f} {s[1]:7.2f} {c[0]:11.0f} {c[1]:7.2f}'
              f'   {c[0] / s[0] if s[0] else 0:6.2f}')
finally:
    p.send_signal(signal.SIGTERM)
    p.wait(10)
    shutil.rmtree(D, ignore_errors=True)
