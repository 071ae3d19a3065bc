"""FastCGI helpers for the tests: a real php-fpm started with its own
configuration, and a scripted FastCGI server that plays chosen records.

    fpm = PhpFpm(scripts={"a.php": "<?php echo 1;"})   # skips without php-fpm
    ... fpm.sock, fpm.root ...
    fpm.stop()

    srv = FcgiServer(lambda req, conn: conn.sendall(stdout(b"...") + end()))
    ... srv.sock; srv.requests[0].params, .stdin, .flags ...
    srv.close()
"""

import glob
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = \
    1, 2, 3, 4, 5, 6, 7


def record(rtype, content=b"", pad=None, version=1, rid=1):
    """One record; pad None: to a multiple of 8."""
    if pad is None:
        pad = (8 - len(content) % 8) % 8
    return (struct.pack(">BBHHBB", version, rtype, rid, len(content), pad, 0)
            + content + b"\0" * pad)


def stdout(data, **kw):
    return record(STDOUT, data, **kw)


def stderr(data, **kw):
    return record(STDERR, data, **kw)


def end(app_status=0, protocol_status=0, **kw):
    return record(END_REQUEST, struct.pack(">IB3x", app_status,
                                           protocol_status), **kw)


def response(head, body=b"", app_status=0):
    """A whole answer: STDOUT head and body, the empty STDOUT, END."""
    return stdout(head + body) + stdout(b"") + end(app_status)


def _pairs(data):
    out, i = {}, 0

    def length():
        nonlocal i
        b = data[i]
        if b < 128:
            i += 1
            return b
        n = struct.unpack(">I", data[i:i + 4])[0] & 0x7fffffff
        i += 4
        return n
    while i < len(data):
        n = length()
        v = length()
        out[data[i:i + n].decode("latin-1")] = data[i + n:i + n + v].decode(
            "latin-1")
        i += n + v
    return out


class Request:
    """What eddy sent on one connection for one request."""

    def __init__(self):
        self.records = []       # (type, id, version, clen, pad)
        self.flags = None
        self.role = None
        self.params_raw = b""
        self.params = {}
        self.stdin = b""
        self.stdin_done = False


def _recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_request(conn, want_stdin=True):
    """Reads BEGIN_REQUEST, PARAMS up to the empty one and, with
    want_stdin, STDIN up to the empty one. None at EOF."""
    req = Request()
    params_done = False
    while True:
        if params_done and (not want_stdin or req.stdin_done):
            return req
        h = _recv_exact(conn, 8)
        if h is None:
            return None
        ver, rtype, rid, clen, pad, _ = struct.unpack(">BBHHBB", h)
        body = _recv_exact(conn, clen + pad) if clen + pad else b""
        if body is None:
            return None
        req.records.append((rtype, rid, ver, clen, pad))
        content = body[:clen]
        if rtype == BEGIN_REQUEST:
            req.role, req.flags = struct.unpack(">HB5x", content)
        elif rtype == PARAMS:
            if clen == 0:
                params_done = True
                req.params = _pairs(req.params_raw)
            req.params_raw += content
        elif rtype == STDIN:
            if clen == 0:
                req.stdin_done = True
            req.stdin += content


class FcgiServer:
    """A FastCGI server on a unix socket: for each connection, reads a
    request and calls handler(req, conn), which writes what it wants and
    returns True to read another request on the same connection. Records
    every request and counts connections."""

    def __init__(self, handler, directory=None, want_stdin=True):
        self.dir = directory or tempfile.mkdtemp(prefix="eddy-fcgi-")
        self.sock = os.path.join(self.dir, "app.sock")
        self.handler = handler
        self.want_stdin = want_stdin
        self.requests = []
        self.connections = 0
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.sock)
        self.lsock.listen(64)
        self.closed = False
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def pass_(self):
        return "unix:" + self.sock

    def _run(self):
        while not self.closed:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            self.connections += 1
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        try:
            while True:
                req = read_request(conn, self.want_stdin)
                if req is None:
                    break
                self.requests.append(req)
                if not self.handler(req, conn):
                    break
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        # shutdown() first: it wakes the threads blocked in accept() or
        # recv() on these sockets. A bare close() leaves them in the
        # call, and a signal to the process (the SIGCHLD of any
        # os.system) restarts it on the same descriptor number, by then
        # another test's socket: the thread would take that test's
        # connections and bytes.
        self.closed = True
        for s in [self.lsock] + self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(5)
        for s in [self.lsock] + self.conns:
            try:
                s.close()
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def php_fpm_binary():
    found = sorted(glob.glob("/usr/sbin/php-fpm*"))
    return found[-1] if found else None


FPM_CONF = """\
[global]
pid = {d}/php-fpm.pid
error_log = {d}/php-fpm.log
daemonize = no

[app]
{user}listen = {d}/php.sock
listen.mode = 0666
pm = static
pm.max_children = {children}
access.log = {d}/access.log
access.format = "%m %r %s"
catch_workers_output = no
clear_env = yes
"""

PHP_INI = """\
display_errors = Off
log_errors = On
error_log =
output_buffering = 0
implicit_flush = 1
max_execution_time = 0
post_max_size = 64M
upload_max_filesize = 64M
enable_post_data_reading = 0
"""


class PhpFpm:
    """php-fpm (Debian's php8.2-fpm) with a pm=static pool on a unix socket
    in a directory of its own, scripts written in its root (www/)."""

    def __init__(self, scripts=None, children=2):
        binary = php_fpm_binary()
        if binary is None:
            pytest.skip("php-fpm is not installed (apt-get install php-fpm; "
                        "./configure --install-deps)")
        # Outside pytest's private tmp: the pool's user must reach it.
        self.dir = tempfile.mkdtemp(prefix="eddy-php-")
        os.chmod(self.dir, 0o755)
        self.root = os.path.join(self.dir, "www")
        os.mkdir(self.root)
        os.chmod(self.root, 0o755)
        self.sock = os.path.join(self.dir, "php.sock")
        for name, text in (scripts or {}).items():
            self.write(name, text)
        user = ""
        args = [binary, "-F", "-y", os.path.join(self.dir, "php-fpm.conf"),
                "-c", os.path.join(self.dir, "php.ini")]
        if os.geteuid() == 0:
            user = "user = nobody\ngroup = nogroup\n"
            args.append("-R")
        with open(os.path.join(self.dir, "php-fpm.conf"), "w") as f:
            f.write(FPM_CONF.format(d=self.dir, user=user, children=children))
        with open(os.path.join(self.dir, "php.ini"), "w") as f:
            f.write(PHP_INI)
        self.out = open(os.path.join(self.dir, "fpm.out"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.out,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                pytest.fail("php-fpm did not start:\n" + log)
            time.sleep(0.05)

    def _ready(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.sock)
            return True
        except OSError:
            return False
        finally:
            s.close()

    @property
    def pass_(self):
        return "unix:" + self.sock

    def write(self, name, text):
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def log(self):
        out = ""
        for name in ("php-fpm.log", "fpm.out"):
            try:
                with open(os.path.join(self.dir, name)) as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def access_log(self):
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        """SIGKILL to the master and its children (its process group)."""
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        self.proc.wait(5)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)
