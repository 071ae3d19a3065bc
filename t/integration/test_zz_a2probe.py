import os, socket, time, threading, signal
from conftest import wait_for
from proxy_backend import Backend, response, TAKEN

CONF = """
    workers: 1
    shutdown_timeout: 2s
    caches:
      main: {path: '{prefix}/cache/main', max_size: 64m, max_entry_size: 32m}
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: {pass: 'http://127.0.0.1:@B@', cache: main, read_timeout: 10s}
"""

def slow(req, conn):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nCache-Control: @CC@\r\n\r\n" + b"x" * 100000)
    try:
        for i in range(100):
            time.sleep(0.1)
            conn.sendall(b"y" * 100000)
    except OSError:
        pass
    return TAKEN

def run(eddy, cc, sig, keep):
    h = lambda req, conn: (conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\nCache-Control: " + cc.encode() + b"\r\n\r\n" + b"x" * 100000), slow2(conn))[1]
    def slow2(conn):
        try:
            for i in range(100):
                time.sleep(0.1)
                conn.sendall(b"y" * 100000)
        except OSError:
            pass
        return TAKEN
    with Backend(h) as b:
        e = eddy(CONF.replace("@B@", str(b.port)))
        s = socket.create_connection(("127.0.0.1", e.port))
        s.sendall(b"GET /q HTTP/1.1\r\nHost: a\r\n\r\n")
        s.recv(1000)
        if not keep:
            s.close()
        time.sleep(0.5)
        tmp = os.path.join(str(e.prefix), 'cache', 'main', '.tmp')
        print('BEFORE', [(f, os.path.getsize(os.path.join(tmp, f))) for f in os.listdir(tmp)], os.popen('ls -l /proc/%d/task/*/fd 2>/dev/null | wc -l' % e.pid).read())
        t0 = time.monotonic()
        e.signal(sig)
        rc = e.wait_exit(15)
        print("RC", rc, "after", time.monotonic() - t0)
        tmp = os.path.join(str(e.prefix), "cache", "main", ".tmp")
        print("TMP", os.listdir(tmp))
        print(e.all_logs()[-3000:])

def test_quit_gone(eddy):
    run(eddy, "max-age=60", signal.SIGQUIT, False)
    assert 0

def test_quit_kept(eddy):
    run(eddy, "max-age=60", signal.SIGQUIT, True)
    assert 0

def test_quit_private_kept(eddy):
    run(eddy, "no-store", signal.SIGQUIT, True)
    assert 0
