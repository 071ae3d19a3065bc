"""Hostile checks of the fleet features (fleet.md, modules-2.md): the
connection handover at a reload, drain_delay with signals in a row,
PROXY protocol listeners with real_ip, and session ticket key files,
each against the real binary."""

import os
import re
import signal
import socket
import struct
import threading
import time

from conftest import read_response, split_response, wait_for
from tlsutil import pki  # noqa: F401 (a fixture)

BODY = "%s port=$remote_port conn=$connection n=$connection_requests " \
       "pid=$pid ra=$remote_addr\\n"

CONFIG = """
workers: %(workers)d
shutdown_timeout: 5s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
events: {max_connections: %(maxconn)d}
servers:
  - listen: %(listen)s
    keepalive_timeout: %(ka)s
    keepalive_requests: %(kareq)d
%(server)s    locations:
      /:
        return: {status: 200, body: "%(body)s"}
      = /metrics:
        status: prometheus
%(extra)s"""


def config(tag, workers=1, maxconn=10000, listen="127.0.0.1:{port}",
           ka="60s", kareq=1000, server="", extra=""):
    return CONFIG % {"workers": workers, "maxconn": maxconn,
                     "listen": listen, "ka": ka, "kareq": kareq,
                     "server": server, "body": BODY % tag, "extra": extra}


def ask(sock, path="/"):
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    data = read_response(sock)
    assert data, "connection closed"
    status, headers, body = split_response(data)
    return status, headers, body.decode()


def fields(body):
    return dict(kv.split("=", 1) for kv in body.split()[1:])


def reload(e):
    rc, out, err = e.ctl("-s", "reload")
    assert rc == 0, (out, err, e.all_logs())


def closed_by_server(sock, timeout=5.0):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


# --------------------------------------------------------------------------
# handover: bytes on the connection at the reload


def test_handover_keepalive_timeout_counts_from_first_idle(eddy):
    """Reloads in a row do not keep an idle connection alive past its
    keepalive_timeout."""
    e = eddy(config("v0", ka="2s"))
    e.wait_workers(1)
    sock = e.connect()
    try:
        ask(sock)
        t0 = time.monotonic()
        closed = False
        for i in range(1, 12):
            time.sleep(0.3)
            e.write_config(config("v%d" % i, ka="2s"))
            reload(e)
            sock.settimeout(0)
            try:
                if sock.recv(1) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
        took = time.monotonic() - t0
        assert closed, e.all_logs()
        assert took < 3.5, took
    finally:
        sock.close()


def test_handover_keepalive_requests_bound(eddy):
    e = eddy(config("v0", kareq=3))
    e.wait_workers(1)
    sock = e.connect()
    try:
        ask(sock)
        ask(sock)
        e.write_config(config("v1", kareq=3))
        reload(e)
        status, headers, body = ask(sock)
        assert body.startswith("v1 ")
        assert "close" in headers.get("connection", [""])[0], headers
        assert closed_by_server(sock, 3)
    finally:
        sock.close()


def test_handover_partial_head_at_reload(eddy):
    """A head half sent at the reload is answered whole, once."""
    e = eddy(config("v0"))
    e.wait_workers(1)
    sock = e.connect()
    try:
        ask(sock)
        sock.sendall(b"GET /a HTTP/1.1\r\nHo")
        time.sleep(0.2)
        e.write_config(config("v1"))
        reload(e)
        sock.sendall(b"st: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.settimeout(5)
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"HTTP/1.1 ") < 2 and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        # The first request at least, never a mangled one.
        assert data.startswith(b"HTTP/1.1 200"), data
        assert data.count(b"HTTP/1.1 200") in (1, 2), data
        assert b" 400 " not in data
    finally:
        sock.close()


def test_handover_body_arriving_at_reload(eddy):
    """A request body still arriving at the reload is not read as a
    request by the new generation."""
    e = eddy(config("v0"))
    e.wait_workers(1)
    sock = e.connect()
    try:
        ask(sock)
        body = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n" * 50
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                     b"\r\n" % len(body) + body[:100])
        time.sleep(0.3)
        e.write_config(config("v1"))
        reload(e)
        sock.sendall(body[100:])
        sock.sendall(b"GET /last HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.settimeout(3)
        data = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        # One response for the POST, at most one for /last: none for the
        # request lines inside the body.
        assert 1 <= data.count(b"HTTP/1.1 ") <= 2, data
    finally:
        sock.close()


def test_handover_requests_in_a_loop_none_lost(eddy):
    """Clients sending requests back to back through reloads: every
    request gets its response (none closed under a request)."""
    e = eddy(config("v0", workers=2))
    e.wait_workers(2)
    stop = threading.Event()
    errors = []
    counts = []

    def client():
        n = 0
        try:
            s = e.connect()
        except OSError as ex:
            errors.append(repr(ex))
            return
        try:
            while not stop.is_set():
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                data = read_response(s)
                if not data:
                    errors.append("closed after %d" % n)
                    return
                status, headers, _ = split_response(data)
                if status != 200:
                    errors.append(status)
                    return
                n += 1
                if "close" in headers.get("connection", [""])[0]:
                    s.close()
                    s = e.connect()
        except OSError as ex:
            errors.append("%r after %d" % (ex, n))
        finally:
            s.close()
            counts.append(n)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 11):
            time.sleep(0.1)
            e.write_config(config("v%d" % i, workers=2))
            reload(e)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, (errors, e.error_log[-3000:])
    assert all(counts), counts


# --------------------------------------------------------------------------
# handover: PROXY listeners


SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(src="198.18.7.7", sport=40000, tlvs=b""):
    body = (socket.inet_aton(src) + socket.inet_aton("127.0.0.1")
            + struct.pack("!HH", sport, 80) + tlvs)
    return SIG + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


PP_SERVER = "    real_ip: {header: proxy_protocol, from: [127.0.0.0/8]}\n"


def pp_listen(on):
    return '{address: "127.0.0.1:{port}", proxy_protocol: %s}' % (
        "true" if on else "false")


def test_handover_proxy_connection_keeps_its_client(eddy):
    e = eddy(config("v0", listen=pp_listen(True), server=PP_SERVER))
    e.wait_workers(1)
    sock = e.connect()
    try:
        sock.sendall(v2())
        _, _, body = ask(sock)
        assert fields(body)["ra"] == "198.18.7.7"
        for i in range(1, 4):
            e.write_config(config("v%d" % i, listen=pp_listen(True),
                                  server=PP_SERVER))
            reload(e)
            _, _, body = ask(sock)
            assert body.startswith("v%d " % i), body
            assert fields(body)["ra"] == "198.18.7.7", body
    finally:
        sock.close()


def test_handover_proxy_listener_turned_off_closes(eddy):
    """A connection whose PROXY header was read is not adopted by the
    same address without proxy_protocol, nor the other way round (the
    client could then send a header of its own)."""
    e = eddy(config("v0", listen=pp_listen(True), server=PP_SERVER))
    e.wait_workers(1)
    a = e.connect()
    try:
        a.sendall(v2())
        ask(a)
        e.write_config(config("v1", listen=pp_listen(False)))
        reload(e)
        assert closed_by_server(a, 5)
    finally:
        a.close()
    b = e.connect()
    try:
        ask(b)
        e.write_config(config("v2", listen=pp_listen(True),
                              server=PP_SERVER))
        reload(e)
        assert closed_by_server(b, 5)
    finally:
        b.close()


# --------------------------------------------------------------------------
# handover: limits, storms, descriptors


def master_fds(e):
    return len(os.listdir("/proc/%d/fd" % e.pid))


def test_handover_respects_max_connections(eddy):
    e = eddy(config("v0", maxconn=30))
    e.wait_workers(1)
    socks = [e.connect() for _ in range(25)]
    try:
        for s in socks:
            ask(s)
        e.write_config(config("v1", maxconn=10))
        reload(e)
        time.sleep(1.5)
        alive = 0
        for s in socks:
            s.settimeout(0)
            try:
                if s.recv(1) == b"":
                    continue
            except BlockingIOError:
                pass
            except OSError:
                continue
            alive += 1
        assert alive <= 10, alive
    finally:
        for s in socks:
            s.close()


def test_handover_hup_storm_with_clients_closing(eddy):
    """HUPs in a row while connections come, go and move: the master
    survives, the generation ends with the configured workers, and it
    holds no descriptor more than before."""
    e = eddy(config("v0", workers=2))
    e.wait_workers(2)
    fds = master_fds(e)
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            try:
                s = e.connect()
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                if os.urandom(1)[0] & 1:
                    read_response(s)
                s.close()
            except OSError:
                pass

    idle = []
    for _ in range(200):
        s = e.connect()
        ask(s)
        idle.append(s)
    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(40):
            e.write_config(config("v%d" % i, workers=2))
            e.signal(signal.SIGHUP)
            time.sleep(0.02 if i % 3 else 0.2)
            if i % 5 == 0:
                for s in idle[i:i + 10]:
                    s.close()
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert e.running()
    e.write_config(config("final", workers=2))
    reload(e)
    assert wait_for(lambda: len(e.worker_pids()) == 2, 20), \
        (e.worker_pids(), e.error_log[-3000:])
    assert wait_for(lambda: master_fds(e) == fds, 10), (master_fds(e), fds)
    s = e.connect()
    try:
        _, _, body = ask(s)
        assert body.startswith("final ")
    finally:
        s.close()
    for s in idle:
        s.close()
    assert "[alert]" not in e.error_log, e.error_log[-3000:]


def tlv(t, value):
    return struct.pack("!BH", t, len(value)) + value


def test_handover_keeps_proxy_tlvs_or_closes(eddy):
    """$proxy_protocol_tlv_* are the connection's: a moved connection
    must not lose them (an access rule on a TLV, such as a denied AWS
    VPC endpoint, would pass once they are gone), so a connection whose
    TLVs are kept is not handed over."""
    extra = """      /tlv:
        return: {status: 200, body: "vpce=$proxy_protocol_tlv_aws_vpce_id\\n"}
"""
    e = eddy(config("v0", listen=pp_listen(True), server=PP_SERVER,
                    extra=extra))
    e.wait_workers(1)
    sock = e.connect()
    try:
        sock.sendall(v2(tlvs=tlv(0xEA, b"\x01vpce-bad")))
        _, _, body = ask(sock, "/tlv")
        assert body == "vpce=vpce-bad\n", body
        e.write_config(config("v1", listen=pp_listen(True), server=PP_SERVER,
                              extra=extra))
        reload(e)
        sock.settimeout(5)
        try:
            sock.sendall(b"GET /tlv HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_response(sock)
        except OSError:
            data = b""
        if data:
            _, _, body = split_response(data)
            assert body == b"vpce=vpce-bad\n", body
    finally:
        sock.close()


# --------------------------------------------------------------------------
# session ticket key files


def test_ticket_key_fifo_refused_without_hanging(eddy, prefix,
                                                 pki):  # noqa: F811
    """A key file that is a FIFO (a secrets agent's pipe, or planted) is
    refused at once: opening it for reading would block the master until
    a writer came, with every signal left waiting."""
    for ext in ("pem", "key"):
        (prefix / ("a." + ext)).write_bytes((pki.root / ("a." + ext))
                                            .read_bytes())
    (prefix / "t.key").write_bytes(b"eddy-test-fifo-k" + os.urandom(64))
    os.chmod(str(prefix / "t.key"), 0o600)
    text = """
workers: 1
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
session_ticket_key_file: %s
servers:
  - listen: 127.0.0.1:{port}
    tls: {certificate: %s, key: %s}
    locations:
      /:
        return: {status: 200, body: "ok\\n"}
""" % (prefix / "t.key", prefix / "a.pem", prefix / "a.key")
    e = eddy(text)
    old = e.wait_workers(1)
    os.unlink(str(prefix / "t.key"))
    os.mkfifo(str(prefix / "t.key"), 0o600)
    t0 = time.monotonic()
    rc, out, err = e.ctl("-s", "reload", timeout=10)
    assert rc == 1, (rc, out, err)
    assert time.monotonic() - t0 < 5
    assert "is not a regular file" in err + e.all_logs(), (err,
                                                           e.all_logs())
    assert e.worker_pids() == old
    rc, out, err = e.ctl("-t", timeout=10)
    assert rc == 1 and "is not a regular file" in err, err
    # The master still answers signals.
    e.signal(signal.SIGTERM)
    assert e.wait_exit(5) is not None


# --------------------------------------------------------------------------
# drain_delay with signals in a row


DRAIN = """
workers: 2
drain_delay: %(delay)s
shutdown_timeout: %(st)s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
servers:
  - listen: 127.0.0.1:{port}
    client_header_timeout: 30s
    keepalive_timeout: 60s
    locations:
      = /healthz:
        health: true
      /:
        return: {status: 200, body: "hello\\n"}
%(extra)s"""


def drain_config(delay="2s", st="3s", extra=""):
    return DRAIN % {"delay": delay, "st": st, "extra": extra}


def health(e):
    s = e.connect()
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, _ = split_response(read_response(s))
        return status
    finally:
        s.close()


def test_upgrade_refused_while_draining(eddy):
    """USR2 during the drain would start a master that serves on (health
    200) after the host was told to leave: refused, as HUP is."""
    e = eddy(drain_config("2s"))
    e.wait_workers(2)
    e.signal(signal.SIGQUIT)
    assert wait_for(lambda: "draining: health answers 503" in e.error_log, 5)
    e.signal(signal.SIGUSR2)
    assert wait_for(lambda: "upgrade refused: draining" in e.error_log, 5), \
        e.error_log
    assert health(e) == 503
    assert e.wait_exit(10) is not None
    time.sleep(0.5)
    # Nothing serves the port any more.
    try:
        socket.create_connection(("127.0.0.1", e.port), timeout=1).close()
        served = True
    except OSError:
        served = False
    assert not served, e.all_logs()
    assert not (e.prefix / "logs" / "eddy.pid").exists()


def test_upgrade_refused_during_graceful_stop(eddy):
    """Likewise once QUIT's graceful stop waits for a request in flight."""
    from proxy_backend import Backend, response
    gate = threading.Event()

    def slow(req, conn):
        gate.wait(5)
        return response(200, b"slow\n")

    with Backend(slow) as b:
        extra = """      /slow:
        proxy: {pass: "http://127.0.0.1:%d"}
""" % b.port
        e = eddy(drain_config("0s", extra=extra))
        e.wait_workers(2)
        s = e.connect()
        try:
            s.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            assert b.wait_requests(1)
            e.signal(signal.SIGQUIT)
            assert wait_for(lambda: "graceful shutdown" in e.error_log, 5)
            e.signal(signal.SIGUSR2)
            assert wait_for(lambda: "upgrade refused: shutting down"
                            in e.error_log, 5), e.error_log
            gate.set()
            status, _, body = split_response(read_response(s))
            assert status == 200 and body == b"slow\n"
        finally:
            s.close()
        assert e.wait_exit(10) is not None
        assert "upgrade: started" not in e.error_log
        assert not (e.prefix / "logs" / "eddy.pid").exists()


def test_quit_storm_bounded_by_drain_and_shutdown_timeout(eddy):
    """QUITs in a row, a request stuck upstream, a head arriving byte by
    byte and an idle keep-alive connection: the master is gone within
    drain_delay + shutdown_timeout (and the master's kill margin)."""
    from proxy_backend import Backend, response

    def hung(req, conn):
        time.sleep(8)
        return response(200, b"late\n")

    with Backend(hung) as b:
        extra = """      /hung:
        proxy: {pass: "http://127.0.0.1:%d", read_timeout: 60s}
""" % b.port
        e = eddy(drain_config("1s", "1s", extra=extra))
        e.wait_workers(2)
        stuck = e.connect()
        slow = e.connect()
        idle = e.connect()
        try:
            stuck.sendall(b"GET /hung HTTP/1.1\r\nHost: t\r\n\r\n")
            assert b.wait_requests(1)
            idle.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            read_response(idle)
            slow.sendall(b"GET / HTTP/1.1\r\n")
            t0 = time.monotonic()
            e.signal(signal.SIGQUIT)
            cut = None
            for i in range(30):
                try:
                    slow.sendall(b"X")
                except OSError:
                    cut = cut or time.monotonic() - t0
                if i % 3 == 0:
                    e.signal(signal.SIGQUIT)
                time.sleep(0.1)
            assert e.wait_exit(10) is not None
            took = time.monotonic() - t0
            assert took < 1 + 1 + 2.5, (took, e.error_log)
            # The second QUIT cut the drain short at once; the head
            # arriving is not cut before shutdown_timeout is over.
            assert "second QUIT: drain cut short" in e.error_log
            assert cut is None or cut > 0.9, (cut, e.error_log)
        finally:
            for s in (stuck, slow, idle):
                s.close()


def test_proxy_header_dribbled_is_closed_at_client_header_timeout(eddy):
    """A PROXY header sent a byte at a time does not hold the connection
    past client_header_timeout (a timer per connection, not per byte)."""
    text = config("v0", listen=pp_listen(True), server=PP_SERVER).replace(
        "    keepalive_timeout: 60s\n",
        "    keepalive_timeout: 60s\n    client_header_timeout: 1s\n")
    e = eddy(text)
    e.wait_workers(1)
    s = e.connect()
    hdr = b"PROXY TCP4 198.18.1.1 127.0.0.1 40312 80\r\n"
    t0 = time.monotonic()
    closed_at = None
    try:
        for c in hdr:
            try:
                s.sendall(bytes([c]))
            except OSError:
                closed_at = time.monotonic()
                break
            time.sleep(0.1)
            s.settimeout(0)
            try:
                if s.recv(1) == b"":
                    closed_at = time.monotonic()
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_at = time.monotonic()
                break
        if closed_at is None:
            assert closed_by_server(s, 3)
            closed_at = time.monotonic()
    finally:
        s.close()
    assert closed_at - t0 < 2.0, closed_at - t0
    assert "broken PROXY protocol header from 127.0.0.1" in e.error_log
