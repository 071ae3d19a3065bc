#!/usr/bin/python3
"""Loading a large cache at start (cache.md, Loading: "a million entries
in under 3 minutes on SSD").

1. eddy stores one real entry (`GET /k0000000`, Host `bench`) from a tiny
   origin (`Cache-Control: max-age=3600`, a 16-byte body); eddy stops.
2. That file is the template: N - 1 copies are written with only the key
   changed (same length: `http://bench/kNNNNNNN`), so every offset stays;
   each copy is named by its key's hash (SHA-256's first 16 bytes, levels
   1:2) and gets the CRC32C of its new prefix, so it is a valid entry for
   a hit, not only for the loader.
3. eddy starts again on that directory; the time from the start to the
   cache manager's `cache "bench": N files loaded` is measured, then a
   sample of keys is requested: every one must be a HIT with the body,
   and the origin must not be asked again.

Printed: files, seconds, files/s, and the time 1,000,000 files would take
at that rate (the loader's pace is linear: 1000 files, then 50 ms of rest).
The page cache is not dropped as a whole (that would slow every other
process on the machine): the files were just written, so by default this
is a warm load. COLD=1 fsyncs each copy and drops its pages
(POSIX_FADV_DONTNEED), so that the loader reads every header from the
disk; directories and inodes stay cached either way (bench/README.md).
The directory is removed at the end.

usage: [COLD=1] bench/cache_load.py [N [BINARY]]   (default 100000,
objs/eddy)
Not part of make check. Needs about 4 KiB of disk per file."""
import glob
import hashlib
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
binary = os.path.abspath(sys.argv[2] if len(sys.argv) > 2
                         else os.path.join(TOP, 'objs/eddy'))
COLD = os.environ.get('COLD', '') not in ('', '0')
BODY = b'cached body 0123'
HDR = struct.Struct('<8sII6qIHH8I2Q')      # ed_http_cache_hdr_t, 120 bytes
assert HDR.size == 120


def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xffffffff
    t = TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xff] ^ (crc >> 8)
    return crc ^ 0xffffffff


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Origin(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = 0

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def serve(self, conn):
        data = b''
        try:
            while True:
                while b'\r\n\r\n' not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                _, _, data = data.partition(b'\r\n\r\n')
                self.requests += 1
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n'
                             b'Cache-Control: max-age=3600\r\n\r\n'
                             % len(BODY) + BODY)
        except OSError:
            pass
        finally:
            conn.close()


class Eddy:
    def __init__(self, d, port, origin_port):
        self.d, self.port = d, port
        self.conf = os.path.join(d, 'conf', 'eddy.yaml')
        zone = max(16, (N // 8000 + 1) * 5 // 4 + 1)
        with open(self.conf, 'w') as f:
            f.write(f"""workers: 1
error_log: {{path: logs/error.log, level: notice}}
access_log: off
caches:
  bench: {{path: {d}/cache, max_size: 100g, keys_zone: {zone}m,
           levels: '1:2'}}
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        proxy: {{pass: 'http://127.0.0.1:{origin_port}', cache: bench}}
        headers: {{set: {{X-Cache: $upstream_cache_status}}}}
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [binary, '-p', self.d, '-c', self.conf],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.d, 'eddy.stderr'), 'ab'))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port),
                                         0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    sys.exit('eddy did not start: ' + open(
                        os.path.join(self.d, 'eddy.stderr')).read())
                time.sleep(0.01)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def get(self, path):
        req = urllib.request.Request(
            f'http://127.0.0.1:{self.port}{path}', headers={'Host': 'bench'})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers.get('X-Cache'), r.read()

    def log(self):
        p = os.path.join(self.d, 'logs', 'error.log')
        return open(p).read() if os.path.exists(p) else ''


def key_of(i):
    return b'http://bench/k%07d' % i


def path_of(d, key):
    h = hashlib.sha256(key).hexdigest()[:32]
    return os.path.join(d, 'cache', h[-1], h[-3:-1], h)


def write_copies(d, template):
    f = HDR.unpack_from(template)
    key_off, key_len, body_off = f[12], f[13], f[20]
    if template[key_off:key_off + key_len] != key_of(0):
        sys.exit('unexpected key in the template: %r'
                 % template[key_off:key_off + key_len])
    zeroed = template[:12] + b'\0\0\0\0' + template[16:body_off]
    digits = key_off + key_len - 7
    # The CRC of everything before the key's digits is the same for all.
    head_crc = crc32c(zeroed[:digits])
    tail = zeroed[digits + 7:]
    body = template[body_off:]
    made = set()
    for i in range(1, N):
        key = key_of(i)
        crc = crc32c(tail, crc32c(key[-7:], head_crc))
        data = (zeroed[:12] + struct.pack('<I', crc) + zeroed[16:digits]
                + key[-7:] + tail + body)
        p = path_of(d, key)
        parent = os.path.dirname(p)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        with open(p, 'wb') as out:
            out.write(data)
            if COLD:
                out.flush()
                os.fsync(out.fileno())
                # Its pages out of the page cache: the loader reads the
                # header from the disk (inodes and directories stay
                # cached: dropping those would take the whole machine's).
                os.posix_fadvise(out.fileno(), 0, 0,
                                 os.POSIX_FADV_DONTNEED)


def main():
    st = os.statvfs(tempfile.gettempdir())
    if st.f_bavail * st.f_frsize < N * 8192 + (1 << 30):
        sys.exit('not enough free disk for %d files' % N)
    origin = Origin()
    origin.start()
    d = tempfile.mkdtemp(prefix='eddy-cache-load-')
    for sub in ('conf', 'logs', 'html'):
        os.makedirs(os.path.join(d, sub))
    e = Eddy(d, free_port(), origin.port)
    try:
        e.start()
        if e.get('/k0000000')[0] != 'MISS':
            sys.exit('template not stored')
        e.stop()
        (tpl,) = glob.glob(os.path.join(d, 'cache', '*', '*', '*'))
        assert tpl == path_of(d, key_of(0)), tpl
        t = time.monotonic()
        write_copies(d, open(tpl, 'rb').read())
        os.sync()
        wrote = time.monotonic() - t
        open(os.path.join(d, 'logs', 'error.log'), 'w').close()

        want = 'cache "bench": %d files loaded' % N
        t0 = time.monotonic()
        e.start()
        ready = time.monotonic() - t0
        while want not in e.log():
            if time.monotonic() - t0 > 900 or e.proc.poll() is not None:
                sys.exit('not loaded; log:\n' + e.log()[-2000:])
            time.sleep(0.02)
        took = time.monotonic() - t0
        # Every sampled key is a hit with its body: the copies are valid
        # entries, and the origin is not asked again.
        for i in random.sample(range(N), min(N, 200)):
            x, body = e.get('/k%07d' % i)
            if x != 'HIT' or body != BODY:
                sys.exit('key %d: %s %r' % (i, x, body))
        if origin.requests != 1:
            sys.exit('origin asked %d times' % origin.requests)
        bad = [l for l in e.log().splitlines()
               if '[error]' in l or '[crit]' in l or '[alert]' in l]
        rate = N / took
        print(f'files:              {N} (written in {wrote:.1f} s; '
              f'{"cold: pages dropped" if COLD else "warm page cache"})')
        print(f'serving after:      {ready * 1000:.0f} ms')
        print(f'loaded after:       {took:.2f} s ({rate:.0f} files/s)')
        print(f'1,000,000 files:    {1e6 / rate:.0f} s at that rate '
              f'(of which 50 s of rests between slices)')
        print(f'hits checked:       {min(N, 200)}, origin requests: '
              f'{origin.requests}')
        if bad:
            print('log errors:\n' + '\n'.join(bad[:5]))
            sys.exit(1)
    finally:
        e.stop()
        t = time.monotonic()
        shutil.rmtree(d, ignore_errors=True)
        print(f'cleanup:            {time.monotonic() - t:.1f} s')


if __name__ == '__main__':
    main()
