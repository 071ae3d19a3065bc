#!/usr/bin/python3
"""Request collapsing at scale (the cache issue's performance line: "1,000
concurrent clients on one cold key cause exactly one upstream request").

eddy with 2 workers and a cache in front of a Python origin that counts
its requests and answers each after DELAY s with a 64 KiB body and
`Cache-Control: max-age=60`. CLIENTS connections are opened at once
(non-blocking sockets, one selector), each sends `GET /cold` on a cold
cache. Printed: origin requests (must be 1), responses by status, how
many bodies differ from the origin's (SHA-256; must be 0), the X-Cache
values, and the time from the first connect to the last byte. Exit
status 0 only when there was exactly one origin request and every client
got the origin's 200 byte for byte.

usage: bench/cache_cold.py [CLIENTS [DELAY [BINARY]]]
  defaults: 1000 clients, 1.0 s, objs/eddy. Not part of make check."""
import hashlib
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
clients = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
delay = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
binary = os.path.abspath(sys.argv[3] if len(sys.argv) > 3
                         else os.path.join(TOP, 'objs/eddy'))
BODY = os.urandom(64 * 1024)
DIGEST = hashlib.sha256(BODY).hexdigest()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Origin(threading.Thread):
    """Counts requests; answers each after delay, one thread each."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.lock = threading.Lock()

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
                with self.lock:
                    self.requests += 1
                time.sleep(delay)
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n'
                             b'Cache-Control: max-age=60\r\n'
                             b'Content-Type: application/octet-stream\r\n'
                             b'\r\n' % len(BODY) + BODY)
        except OSError:
            pass
        finally:
            conn.close()


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n)) if hard != resource.RLIM_INFINITY else n
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def main():
    nofile = raise_nofile(clients * 3 + 1000)
    if nofile < clients + 100:
        sys.exit('RLIMIT_NOFILE %d is too low for %d clients'
                 % (nofile, clients))
    origin = Origin()
    origin.start()
    port = free_port()
    d = tempfile.mkdtemp(prefix='eddy-cache-cold-')
    for sub in ('conf', 'logs', 'html'):
        os.makedirs(os.path.join(d, sub))
    conf = os.path.join(d, 'conf', 'eddy.yaml')
    with open(conf, 'w') as f:
        f.write(f"""workers: 2
error_log: {{path: logs/error.log, level: warn}}
access_log: off
events: {{max_connections: {clients * 2 + 100}, backlog: 4096}}
caches:
  main: {{path: {d}/cache, max_size: 64m}}
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        proxy: {{pass: 'http://127.0.0.1:{origin.port}', cache: main}}
        headers: {{set: {{X-Cache: $upstream_cache_status}}}}
""")
    proc = subprocess.Popen([binary, '-p', d, '-c', conf],
                            stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, 'eddy.stderr'), 'wb'))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(('127.0.0.1', port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit('eddy did not start: '
                             + open(os.path.join(d, 'eddy.stderr')).read())
                time.sleep(0.05)
        time.sleep(0.5)                 # both workers and the manager up
        run(port, origin, d)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)


def run(port, origin, d):
    sel = selectors.DefaultSelector()
    req = b'GET /cold HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n'
    state = {}
    t0 = time.monotonic()
    for i in range(clients):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(('127.0.0.1', port))
        state[s] = [b'', bytearray()]       # request left to send, reply
        state[s][0] = req
        sel.register(s, selectors.EVENT_WRITE)
    connected = time.monotonic()
    last = t0
    done = []
    errors = []
    deadline = t0 + 60
    while state and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1):
            s = key.fileobj
            st = state[s]
            try:
                if ev & selectors.EVENT_WRITE:
                    n = s.send(st[0])
                    st[0] = st[0][n:]
                    if not st[0]:
                        sel.modify(s, selectors.EVENT_READ)
                    continue
                chunk = s.recv(262144)
            except BlockingIOError:
                continue
            except OSError as e:
                errors.append(repr(e))
                chunk = b''
            if chunk:
                st[1] += chunk
                continue
            last = time.monotonic()
            sel.unregister(s)
            s.close()
            done.append(bytes(st[1]))
            del state[s]
    for s in state:
        errors.append('unfinished after 60 s (%d bytes)' % len(state[s][1]))
        s.close()

    statuses, kinds, bad = {}, {}, 0
    digests = set()
    for reply in done:
        head, _, body = reply.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        st = lines[0].split(' ')[1] if len(lines[0].split(' ')) > 1 else '?'
        statuses[st] = statuses.get(st, 0) + 1
        for line in lines[1:]:
            k, _, v = line.partition(':')
            if k.lower() == 'x-cache':
                kinds[v.strip()] = kinds.get(v.strip(), 0) + 1
        h = hashlib.sha256(body).hexdigest()
        digests.add(h)
        bad += h != DIGEST
    total = time.monotonic() - t0
    print(f'clients:            {clients} (opened in '
          f'{(connected - t0) * 1000:.0f} ms, origin delay {delay:g} s)')
    print(f'origin requests:    {origin.requests}')
    print(f'responses:          {sorted(statuses.items())}')
    print(f'X-Cache:            {sorted(kinds.items())}')
    print(f'distinct SHA-256:   {len(digests)} (bodies not the origin\'s: '
          f'{bad})')
    print(f'time to last byte:  {(last - t0):.3f} s (run {total:.3f} s)')
    if errors:
        print(f'errors:             {len(errors)}: {errors[:3]}')
    log = open(os.path.join(d, 'logs', 'error.log')).read() \
        if os.path.exists(os.path.join(d, 'logs', 'error.log')) else ''
    if '[alert]' in log or '[crit]' in log or '[error]' in log:
        print('error log:\n' + log[-2000:])
    ok = (origin.requests == 1 and statuses == {'200': clients}
          and bad == 0 and not errors)
    print('result:             ' + ('OK' if ok else 'FAILED'))
    if not ok:
        sys.exit(1)


if __name__ == '__main__':
    main()
