"""One client of the fleet scenario (doc/fleet.md), run inside the client
namespace by check_fleet.py:

    fleet_client.py KIND ADDRESS OUTFILE STOPFILE DEADLINE

KIND is `keepalive` (HTTP/1.1, one connection as long as the server keeps
it), `close` (one request per connection) or `tls12` / `tls13` (HTTPS, one
request per connection, each resuming the session of the previous one).
A request starts every 10 ms (later if the previous one took longer) until
STOPFILE exists or the wall clock passes DEADLINE.

Each request is one tab-separated line in OUTFILE:

    start end port new outcome status x-host x-config reused

times from time.time(), `port` the client's local port, `new` 1 when the
request opened its connection, `outcome` `ok` or what went wrong
(`status`, `refused`, `reset`, `eof`, `timeout`, `tls`, `error`), `reused`
1/0 for a resumed TLS session (`-` for plain HTTP).

Only the standard library: the scenario must run on a bare Debian with
python3."""

import errno
import os
import socket
import ssl
import sys
import time

INTERVAL = 0.010
TIMEOUT = 5.0           # a request without a complete response by then fails


class Failed(Exception):
    """The request failed; args[0] is the outcome word."""


def recv(sock, deadline):
    left = deadline - time.time()
    if left <= 0:
        raise Failed("timeout")
    sock.settimeout(left)
    return sock.recv(65536)


def read_response(sock, buf, deadline):
    """One response from buf + the socket: (status, headers, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = recv(sock, deadline)
        if not chunk:
            raise Failed("eof")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise Failed("error")
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = \
            value.strip().decode("latin-1")
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = recv(sock, deadline)
        if not chunk:
            raise Failed("eof")
        rest += chunk
    return status, headers, rest[length:]


def outcome_of(exc):
    """The outcome word of an exception raised while doing a request."""
    if isinstance(exc, Failed):
        return exc.args[0]
    if isinstance(exc, socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError,
                        ConnectionAbortedError)):
        return "reset"
    if isinstance(exc, ssl.SSLEOFError):
        return "eof"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, OSError) and exc.errno == errno.ECONNRESET:
        return "reset"
    return "error"


def local_port(sock):
    try:
        return sock.getsockname()[1]
    except OSError:
        return 0


def connect(address, deadline):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(max(0.001, deadline - time.time()))
    try:
        sock.connect(address)
    except BaseException:
        port = local_port(sock)
        sock.close()
        raise Failed(outcome_of(sys.exc_info()[1]), port)
    return sock


def request(close):
    return (b"GET / HTTP/1.1\r\nHost: fleet.test\r\n"
            + (b"Connection: close\r\n" if close else b"") + b"\r\n")


class Client:
    def __init__(self, kind, address, out):
        self.kind = kind
        self.address = address
        self.out = out
        self.sock = None
        self.buf = b""
        self.port = 0
        self.session = None
        if kind.startswith("tls"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            v = (ssl.TLSVersion.TLSv1_2 if kind == "tls12"
                 else ssl.TLSVersion.TLSv1_3)
            ctx.minimum_version = v
            ctx.maximum_version = v
            self.ctx = ctx

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def once(self):
        """One request: (port, new, outcome, status, headers, reused)."""
        deadline = time.time() + TIMEOUT
        new = 0
        reused = "-"
        try:
            if self.sock is None:
                new = 1
                self.port = 0
                raw = connect(self.address, deadline)
                self.port = local_port(raw)
                if self.kind.startswith("tls"):
                    raw.settimeout(max(0.001, deadline - time.time()))
                    self.sock = self.ctx.wrap_socket(
                        raw, server_hostname="fleet.test",
                        session=self.session)
                else:
                    self.sock = raw
            self.sock.settimeout(max(0.001, deadline - time.time()))
            self.sock.sendall(request(self.kind != "keepalive"))
            status, headers, self.buf = read_response(self.sock, self.buf,
                                                      deadline)
            if self.kind.startswith("tls"):
                reused = "1" if self.sock.session_reused else "0"
                self.session = self.sock.session
            if (self.kind != "keepalive"
                    or headers.get("connection", "").lower() == "close"):
                self.close()
            return (self.port, new, "ok" if status == 200 else "status",
                    status, headers, reused)
        except Exception as e:  # every failure is a result to record
            if isinstance(e, Failed) and len(e.args) > 1 and e.args[1]:
                self.port = e.args[1]
            self.close()
            return self.port, new, outcome_of(e), 0, {}, reused

    def run(self, stopfile, deadline):
        while time.time() < deadline and not os.path.exists(stopfile):
            start = time.time()
            port, new, outcome, status, headers, reused = self.once()
            end = time.time()
            self.out.write("%.6f\t%.6f\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n" % (
                start, end, port, new, outcome, status,
                headers.get("x-host", "-"), headers.get("x-config", "-"),
                reused))
            pause = start + INTERVAL - time.time()
            if pause > 0:
                time.sleep(pause)
        self.close()


def main(argv):
    kind, address, outfile, stopfile, deadline = argv[1:6]
    host, _, port = address.rpartition(":")
    with open(outfile, "w", buffering=1 << 16) as out:
        Client(kind, (host, int(port)), out).run(stopfile, float(deadline))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
