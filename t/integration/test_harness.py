"""The test servers themselves: one a test closed leaves no thread that
could take a later test's connections. Its listening socket's number
goes to the next socket made; a thread still blocked in accept() on it
is restarted by any signal to the process (the SIGCHLD of os.system)
and then accepts on the new socket: a later test's backend loses
requests, and the request never gets its answer."""

import os
import socket
import time

from fcgiutil import FcgiServer
from proxy_backend import Backend, response


def http_get(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                  % path.encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk
    finally:
        s.close()


def test_closed_fcgi_server_takes_no_later_connection():
    srv = FcgiServer(lambda req, conn: False)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.connect(srv.sock)
    deadline = time.monotonic() + 5
    while srv.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)     # its accept loop blocks in accept() again
    u.close()
    number = srv.lsock.fileno()
    srv.close()
    with Backend(lambda req, conn: response(200, b"ok")) as b:
        assert b.sock.fileno() == number    # the number was taken again
        assert os.system("true") == 0       # a SIGCHLD to this process
        for i in range(4):
            r = http_get(b.port, "/%d" % i)
            assert r.startswith(b"HTTP/1.1 200 ") and r.endswith(b"ok"), r
        assert [q.target for q in b.requests] == ["/0", "/1", "/2", "/3"]
