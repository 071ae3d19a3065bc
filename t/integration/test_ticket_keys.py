"""Session ticket key files (modules-2.md "Session ticket key files",
fleet.md "shared tickets"): nginx's 48- and 80-byte layouts, sessions
resuming across instances given the same files (and on nginx with them),
rotation (the first key encrypts, all decrypt, a ticket under another key
is renewed), reload and a new binary reading the files again, the -t
errors and the permission warning."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (free_port, pid_alive, position, proc_children,
                      read_response, run_eddy, split_response, wait_for)
from tlsutil import OPENSSL, pki  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(OPENSSL is None,
                                reason="the openssl command is needed")

NGINX = shutil.which("nginx") or (
    "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)

# Key files with names that tell them apart, the rest random.
NAME_OLD = b"eddy-test-old-k!"
NAME_NEW = b"eddy-test-new-k!"


def key_bytes(name, size=80):
    assert len(name) == 16
    return name + os.urandom(size - 16)


def write_key(path, data, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(str(path), mode)
    return path


CONFIG = """
workers: %(workers)d
shutdown_timeout: 2s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
# The kernel spreads new connections over the workers (with the default
# exclusive accept an idle worker 0 may take every one of them).
events: {accept: reuseport}
session_ticket_key_file: %(keys)s
servers:
  - listen: 127.0.0.1:{port}
    names: [a.test]
    tls: {certificate: certs/a.pem, key: certs/a.key}
    locations:
      /:
        return: {status: 200, body: "eddy $worker_id\\n"}
"""


def start(eddy, pki, keys, workers=1):
    """An instance serving a.test with the key files keys (a list of
    paths, or a YAML text)."""
    if not isinstance(keys, str):
        keys = "[%s]" % ", ".join(str(k) for k in keys)
    e = eddy(CONFIG % {"workers": workers, "keys": keys}, start=False)
    for ext in ("pem", "key"):
        e.write_file("certs/a.%s" % ext, (pki.root / ("a." + ext))
                     .read_bytes())
    return e.start()


def client_ctx(pki, version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    ctx.check_hostname = False
    if version:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def https(port, ctx, session=None):
    """One request on a new connection. Returns (body, session, reused):
    the session is read after the response, since TLS 1.3 tickets come
    after the handshake."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s = ctx.wrap_socket(raw, server_hostname="a.test", session=session)
    except Exception:
        raw.close()
        raise
    try:
        s.settimeout(5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        status, _, body = split_response(read_response(s))
        assert status == 200
        return body.decode(), s.session, s.session_reused
    finally:
        s.close()


VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
VERSION_IDS = ["tls12", "tls13"]


# --------------------------------------------------------------------------
# resumption


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
@pytest.mark.parametrize("size", [80, 48])
def test_resumes_on_one_instance(eddy, pki, tmp_path, version, size):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW, size))
    e = start(eddy, pki, [key])
    ctx = client_ctx(pki, version)
    _, first, reused = https(e.port, ctx)
    assert not reused
    assert first.has_ticket
    session = first
    for _ in range(3):
        _, session, reused = https(e.port, ctx, session)
        assert reused


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
@pytest.mark.parametrize("size", [80, 48])
def test_same_file_resumes_on_another_instance(eddy, pki, tmp_path,
                                               version, size):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW, size))
    a = start(eddy, pki, [key])
    b = start(eddy, pki, [key])
    ctx = client_ctx(pki, version)
    _, first, _ = https(a.port, ctx)
    _, second, reused = https(b.port, ctx, first)
    assert reused
    # and back, with the ticket B gave
    _, _, reused = https(a.port, ctx, second)
    assert reused


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_different_files_fall_back_to_a_full_handshake(eddy, pki, tmp_path,
                                                       version):
    a = start(eddy, pki, [write_key(tmp_path / "keys" / "a.key",
                                    key_bytes(NAME_NEW))])
    # the same name, other key bytes: the ticket's MAC does not match
    b = start(eddy, pki, [write_key(tmp_path / "keys" / "b.key",
                                    key_bytes(NAME_NEW))])
    c = start(eddy, pki, [write_key(tmp_path / "keys" / "c.key",
                                    key_bytes(NAME_OLD))])
    ctx = client_ctx(pki, version)
    _, first, _ = https(a.port, ctx)
    body, _, reused = https(b.port, ctx, first)
    assert not reused and body.startswith("eddy")
    body, _, reused = https(c.port, ctx, first)
    assert not reused and body.startswith("eddy")


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
def test_rotation_old_ticket_resumes_and_is_renewed(eddy, pki, tmp_path,
                                                    version):
    """A has [new, old], B [old], C [new]: B's ticket resumes on A, and A
    gives a ticket under the new key, which C takes; B's own ticket C
    does not."""
    old = write_key(tmp_path / "keys" / "old.key", key_bytes(NAME_OLD))
    new = write_key(tmp_path / "keys" / "new.key", key_bytes(NAME_NEW, 48))
    a = start(eddy, pki, [new, old])
    b = start(eddy, pki, [old])
    c = start(eddy, pki, [new])
    ctx = client_ctx(pki, version)
    _, from_b, _ = https(b.port, ctx)
    _, from_a, reused = https(a.port, ctx, from_b)
    assert reused
    _, _, reused = https(c.port, ctx, from_b)
    assert not reused
    _, _, reused = https(c.port, ctx, from_a)
    assert reused
    # A's own tickets are under the new key: B cannot read them
    _, fresh, _ = https(a.port, ctx)
    _, _, reused = https(b.port, ctx, fresh)
    assert not reused


def test_tls12_ticket_under_first_key_is_not_renewed(eddy, pki, tmp_path):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW))
    e = start(eddy, pki, [key])
    ctx = client_ctx(pki, ssl.TLSVersion.TLSv1_2)
    _, first, _ = https(e.port, ctx)
    _, second, reused = https(e.port, ctx, first)
    assert reused
    assert second.id == first.id and second.time == first.time


def test_resumes_across_workers(eddy, pki, tmp_path):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW))
    e = start(eddy, pki, [key], workers=2)
    e.wait_workers(2)
    ctx = client_ctx(pki)
    _, first, _ = https(e.port, ctx)
    seen = set()
    for _ in range(60):
        body, _, reused = https(e.port, ctx, first)
        assert reused
        seen.add(body.split()[1])
        if len(seen) == 2:
            break
    assert seen == {"0", "1"}


def test_reload_reads_the_files_again(eddy, pki, tmp_path):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_OLD))
    other = write_key(tmp_path / "keys" / "other.key", key_bytes(NAME_NEW))
    a = start(eddy, pki, [key])
    b = start(eddy, pki, [other])
    ctx = client_ctx(pki)
    _, from_a, _ = https(a.port, ctx)
    _, from_b, _ = https(b.port, ctx)
    _, _, reused = https(a.port, ctx, from_b)
    assert not reused
    old = a.wait_workers(1)
    # the operator installs B's key in A's file, then reloads
    write_key(key, other.read_bytes())
    a.signal(signal.SIGHUP)
    a.wait_workers(1, exclude=old)
    _, _, reused = https(a.port, ctx, from_b)
    assert reused
    _, _, reused = https(a.port, ctx, from_a)
    assert not reused


def test_one_path_as_a_scalar(eddy, pki, tmp_path):
    write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW))
    a = start(eddy, pki, str(tmp_path / "keys" / "t.key"))
    b = start(eddy, pki, [tmp_path / "keys" / "t.key"])
    ctx = client_ctx(pki)
    _, first, _ = https(a.port, ctx)
    _, _, reused = https(b.port, ctx, first)
    assert reused


def test_relative_path_resolves_against_the_prefix(eddy, pki):
    e = eddy(CONFIG % {"workers": 1, "keys": "keys/t.key"}, start=False)
    for ext in ("pem", "key"):
        e.write_file("certs/a.%s" % ext, (pki.root / ("a." + ext))
                     .read_bytes())
    write_key(e.prefix / "keys" / "t.key", key_bytes(NAME_NEW))
    e.start()
    ctx = client_ctx(pki)
    _, first, _ = https(e.port, ctx)
    _, _, reused = https(e.port, ctx, first)
    assert reused


# --------------------------------------------------------------------------
# nginx with the same file (only where nginx happens to be installed)


NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
%(user)s
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    server {
        listen 127.0.0.1:%(port)d ssl;
        server_name a.test;
        ssl_certificate %(pki)s/a.pem;
        ssl_certificate_key %(pki)s/a.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_ticket_key %(key)s;
        location / { return 200 "nginx\\n"; }
    }
}
"""


@pytest.fixture
def nginx(tmp_path, pki):
    if NGINX is None:
        pytest.skip("nginx is not installed")
    procs = []

    def run(key):
        prefix = tmp_path / ("nginx%d" % len(procs))
        prefix.mkdir()
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(NGINX_CONF % {
            "prefix": prefix, "port": port, "pki": pki.root, "key": key,
            "user": "user root;" if os.geteuid() == 0 else ""})
        p = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf),
                              "-e", str(prefix / "error.log")],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE,
                             start_new_session=True)
        procs.append(p)

        def up():
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return p.poll() is not None
        wait_for(up, 10)
        if p.poll() is not None:
            pytest.skip("nginx did not start: %s"
                        % p.stderr.read().decode(errors="replace"))
        return port

    yield run
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


@pytest.mark.parametrize("version", VERSIONS, ids=VERSION_IDS)
@pytest.mark.parametrize("size", [80, 48])
def test_nginx_with_the_same_file_resumes(eddy, pki, tmp_path, nginx,
                                          version, size):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW, size))
    e = start(eddy, pki, [key])
    port = nginx(key)
    ctx = client_ctx(pki, version)
    _, from_eddy, _ = https(e.port, ctx)
    body, from_nginx, reused = https(port, ctx, from_eddy)
    assert body == "nginx\n"
    assert reused
    body, _, reused = https(e.port, ctx, from_nginx)
    assert body.startswith("eddy")
    assert reused


# --------------------------------------------------------------------------
# -t


def t_config(prefix, pki, keys_yaml):
    for ext in ("pem", "key"):
        shutil.copy(str(pki.root / ("a." + ext)), str(prefix / ("a." + ext)))
    text = ("session_ticket_key_file: %s\n"
            "servers:\n"
            "  - listen: 127.0.0.1:%d\n"
            "    tls: {certificate: a.pem, key: a.key}\n"
            % (keys_yaml, free_port()))
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    return conf, text


def run_t(prefix, pki, keys_yaml, *args):
    conf, text = t_config(prefix, pki, keys_yaml)
    rc, out, err = run_eddy(["-t", "-p", prefix, "-c", conf] + list(args))
    return rc, out, err, conf, text


def at(conf, text, needle, nth=1):
    return "%s:%d:%d: " % ((conf,) + position(text, needle, nth))


@pytest.mark.parametrize("size", [0, 32, 79, 81])
def test_t_wrong_size(prefix, pki, size):
    write_key(prefix / "good.key", key_bytes(NAME_OLD))
    write_key(prefix / "bad.key", os.urandom(size))
    rc, _, err, conf, text = run_t(prefix, pki, "[good.key, bad.key]")
    assert rc == 1, err
    assert (at(conf, text, "bad.key") + 'session ticket key file "%s" must '
            'be 48 or 80 bytes, got %d' % (prefix / "bad.key", size)) in err
    assert "test failed" in err


def test_t_repeated_key_name(prefix, pki):
    data = key_bytes(NAME_OLD)
    write_key(prefix / "one.key", data)
    write_key(prefix / "two.key", NAME_OLD + os.urandom(32))
    rc, _, err, conf, text = run_t(prefix, pki, "[one.key, two.key]")
    assert rc == 1, err
    assert (at(conf, text, "two.key") + 'session ticket key file "%s" '
            'repeats the key name of "%s"' % (prefix / "two.key",
                                               prefix / "one.key")) in err
    # the key bytes, its name included, are not told
    assert "eddy-test" not in err


def test_t_same_file_twice(prefix, pki):
    write_key(prefix / "one.key", key_bytes(NAME_OLD))
    rc, _, err, conf, text = run_t(prefix, pki, "[one.key, one.key]")
    assert rc == 1, err
    assert (at(conf, text, "one.key", 2) + 'session ticket key file') in err
    assert "repeats the key name" in err


def test_t_missing_file(prefix, pki):
    rc, _, err, conf, text = run_t(prefix, pki, "nokey.key")
    assert rc == 1, err
    assert (at(conf, text, "nokey.key") + 'cannot read session ticket key '
            'file "%s": No such file or directory' % (prefix / "nokey.key")
            ) in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_t_unreadable_file(prefix, pki):
    write_key(prefix / "t.key", key_bytes(NAME_OLD), mode=0)
    rc, _, err, conf, text = run_t(prefix, pki, "t.key")
    assert rc == 1, err
    assert at(conf, text, "t.key") + "cannot read" in err
    assert "Permission denied" in err


def test_t_a_directory(prefix, pki):
    (prefix / "keys").mkdir()
    rc, _, err, conf, text = run_t(prefix, pki, "[keys]")
    assert rc == 1, err
    assert at(conf, text, "keys]") + "session ticket key file" in err
    assert "is not a regular file" in err


@pytest.mark.parametrize("value", ["{a: b}", "[]", "[[a]]", '""'])
def test_t_not_a_path(prefix, pki, value):
    rc, _, err, conf, text = run_t(prefix, pki, value)
    assert rc == 1, err
    assert (at(conf, text, value) + 'invalid value for '
            '"session_ticket_key_file": expected a '
            'path or a list of paths') in err, err


@pytest.mark.parametrize("mode,who", [(0o640, "its group"),
                                      (0o604, "everyone"),
                                      (0o644, "everyone")])
def test_t_readable_by_others_warns(prefix, pki, mode, who):
    write_key(prefix / "ok.key", key_bytes(NAME_NEW))
    write_key(prefix / "t.key", key_bytes(NAME_OLD), mode=mode)
    rc, _, err, conf, text = run_t(prefix, pki, "[ok.key, t.key]")
    assert rc == 0, err
    want = (at(conf, text, "t.key") + 'warning: session ticket key file '
            '"%s" is readable by %s (mode %04o)' % (prefix / "t.key", who,
                                                     mode))
    assert want in err, err
    assert "ok.key" not in err
    rc, _, err, _, _ = run_t(prefix, pki, "[ok.key, t.key]", "--strict")
    assert rc == 1, err


def test_t_owner_only_is_quiet(prefix, pki):
    write_key(prefix / "t.key", key_bytes(NAME_OLD), mode=0o400)
    rc, _, err, _, _ = run_t(prefix, pki, "t.key", "--strict")
    assert rc == 0, err
    assert "warning" not in err


def test_warning_logged_at_start(eddy, pki, tmp_path):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW),
                    mode=0o644)
    e = start(eddy, pki, [key])
    assert wait_for(lambda: "is readable by everyone" in e.all_logs(), 5)
    assert "eddy-test" not in e.all_logs()


def test_bad_file_on_reload_keeps_the_old_keys(eddy, pki, tmp_path):
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_NEW))
    e = start(eddy, pki, [key])
    old = e.wait_workers(1)
    ctx = client_ctx(pki)
    _, first, _ = https(e.port, ctx)
    write_key(key, os.urandom(32))
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: "must be 48 or 80 bytes, got 32"
                    in e.all_logs(), 5), e.all_logs()
    time.sleep(0.2)
    assert e.worker_pids() == old
    _, _, reused = https(e.port, ctx, first)
    assert reused


def test_dump_prints_the_key_files(prefix, pki):
    write_key(prefix / "a.key.tk", key_bytes(NAME_NEW))
    write_key(prefix / "b.key.tk", key_bytes(NAME_OLD))
    conf, _ = t_config(prefix, pki, "[a.key.tk, b.key.tk]")
    rc, out, err = run_eddy(["-T", "-p", prefix, "-c", conf])
    assert rc == 0, err
    assert "\nsession_ticket_key_file: [a.key.tk, b.key.tk]\n" in out, out
    assert "eddy-test" not in out
    # and the dump loads again, with the same keys
    dumped = prefix / "conf" / "dumped.yaml"
    dumped.write_text(out)
    rc, again, err = run_eddy(["-T", "-p", prefix, "-c", dumped])
    assert rc == 0, err
    assert "\nsession_ticket_key_file: [a.key.tk, b.key.tk]\n" in again


def test_new_binary_reads_the_files_again(eddy, pki, tmp_path):
    """USR2: the new master reads the key files itself rather than taking
    the old master's keys."""
    key = write_key(tmp_path / "keys" / "t.key", key_bytes(NAME_OLD))
    other = write_key(tmp_path / "keys" / "other.key", key_bytes(NAME_NEW))
    a = start(eddy, pki, [key])
    b = start(eddy, pki, [other])
    ctx = client_ctx(pki, ssl.TLSVersion.TLSv1_2)
    _, from_a, _ = https(a.port, ctx)
    _, from_b, _ = https(b.port, ctx)
    write_key(key, other.read_bytes())
    pid_file = a.prefix / "logs" / "eddy.pid"
    a.signal(signal.SIGUSR2)

    def new_master():
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid != a.pid else None

    new_pid = wait_for(new_master, 10)
    assert new_pid, a.all_logs()
    a._seen_workers.add(new_pid)
    try:
        a.signal(signal.SIGWINCH)         # the old workers stop
        assert wait_for(lambda: set(proc_children(a.pid)) <= {new_pid}, 10)
        assert wait_for(lambda: proc_children(new_pid), 10)
        _, _, reused = https(a.port, ctx, from_b)
        assert reused
        _, _, reused = https(a.port, ctx, from_a)
        assert not reused
    finally:
        os.kill(new_pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(new_pid), 5)
