"""Fixtures for eddy's integration tests (stdlib only).

Every test gets a fresh prefix directory (conf/, logs/, html/), a real
objs/eddy started in the foreground on free loopback ports, and a guaranteed
stop at teardown (master and any stray workers).  Everything that talks to
the server is bounded in time, and an alarm bounds each test as a whole.

Usage:

    def test_something(eddy):
        e = eddy('''
            workers: 2
            servers:
              - listen: 127.0.0.1:{port}
                locations:
                  /:
                    return: {status: 200, body: "hi\\n"}
        ''')
        r = e.request("GET", "/")
        assert r.status == 200 and r.body == b"hi\\n"

Placeholders replaced in the config text: {port} (= {port0}), {port0} ..
{portN} (pass ports=N+1), {prefix}.  Nothing else is touched, so YAML flow
maps like {status: 200} need no escaping.

Environment: EDDY_BINARY runs another binary than <repo>/objs/eddy (e.g. a
sanitizer build); EDDY_TEST_TIMEOUT bounds each test (default 60 s).
Run: python3 -m pytest -q t/integration  (or make check-integration).
"""

import http.client
import os
import random
import re
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EDDY_BIN = Path(os.environ.get("EDDY_BINARY", REPO / "objs" / "eddy"))

# Upper bound for one test, safety net on top of the bounded helpers.
TEST_TIMEOUT = int(os.environ.get("EDDY_TEST_TIMEOUT", "60"))


# --------------------------------------------------------------------------
# small helpers


# EDDY_TEST_PORTS=LO-HI (set by shards.py): this process's own range,
# below the ephemeral range, so neither another shard nor any client's
# connect() can take a port between free_ports() and eddy's bind.
_PORTS = [int(x) for x in os.environ.get("EDDY_TEST_PORTS", "").split("-")
          if x]


def _port_candidate():
    if len(_PORTS) != 2:
        return 0
    return random.randint(_PORTS[0], _PORTS[1])


def free_ports(n=1, host="127.0.0.1"):
    """Return n distinct TCP ports that are free on host right now.

    The sockets are held open together so the kernel cannot hand out the
    same port twice, then closed (SO_REUSEADDR lets eddy bind them at once).
    """
    socks = []
    tries = 0
    try:
        while len(socks) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, _port_candidate()))
            except OSError:
                s.close()
                tries += 1
                if not _PORTS or tries == 1000:
                    raise
                continue  # that one is taken: another from the range
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host="127.0.0.1"):
    return free_ports(1, host)[0]


def wait_for(pred, timeout=10.0, interval=0.05):
    """Poll pred() until it returns a true value or timeout expires.

    Returns the last value of pred() (falsy on timeout).  Exceptions raised
    by pred count as a false value.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = pred()
        except Exception:  # noqa: BLE001 - polling, anything may be transient
            value = None
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def run_eddy(args, cwd=None, timeout=10, env=None, input=None):
    """Run objs/eddy with args (a list); return (rc, stdout, stderr) as str.

    A run that outlives timeout is killed and reported as a test failure.
    """
    _require_binary()
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        p = subprocess.run(
            [str(EDDY_BIN)] + [str(a) for a in args],
            cwd=str(cwd) if cwd is not None else None,
            env=full_env,
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail("eddy %s did not finish in %ss; stderr:\n%s"
                    % (" ".join(map(str, args)), timeout,
                       _decode(exc.stderr)))
    return p.returncode, _decode(p.stdout), _decode(p.stderr)


def _decode(b):
    if b is None:
        return ""
    if isinstance(b, str):
        return b
    return b.decode("utf-8", "replace")


def _require_binary():
    if not (EDDY_BIN.is_file() and os.access(EDDY_BIN, os.X_OK)):
        pytest.fail("%s is not built (run make)" % EDDY_BIN)


def proc_children(pid):
    """Live (non-zombie) children of pid, read from /proc."""
    kids = set()
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                    kids.update(int(x) for x in f.read().split())
            except OSError:
                kids = None
                break
    except OSError:
        return []
    if kids is None:
        # Kernel without CONFIG_PROC_CHILDREN: scan every process' ppid.
        kids = set()
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = proc_stat(int(name))
                if st and st[1] == pid:
                    kids.add(int(name))
    out = []
    for k in sorted(kids):
        st = proc_stat(k)
        if st and st[1] == pid and st[0] not in ("Z", "X"):
            out.append(k)
    return out


def proc_stat(pid):
    """(state, ppid, pgid) of pid from /proc/PID/stat, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces.
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def format_config(text, ports=(), prefix=None):
    """Dedent text (and drop leading blank lines); replace {port} (the
    first port), {port0}..{portN} and {prefix}.  YAML braces are left
    alone."""
    text = textwrap.dedent(text).lstrip("\n")

    def sub(m):
        name = m.group(1)
        if name == "prefix":
            return str(prefix)
        if name == "port":
            return str(ports[0])
        return str(ports[int(name[4:])])

    return re.sub(r"\{(prefix|port\d*)\}", sub, text)


def _find(text, s, start):
    """text.index(s, start), but a number is only found whole: "100" is
    not in a port such as 10073 (the ports differ from run to run)."""
    i = start
    while True:
        i = text.index(s, i)
        j = i + len(s)
        if not ((s[:1].isdigit() and i > 0 and text[i - 1].isdigit())
                or (s[-1:].isdigit() and j < len(text)
                    and text[j].isdigit())):
            return i
        i += 1


def position(text, needle, nth=1):
    """1-based (line, column) of the nth occurrence of needle in text, as
    an error message should report it. A needle (context, part) is part
    within the nth context: for a value that a path in the text may hold
    too (a temporary directory's random name)."""
    i = -1
    for _ in range(nth):
        i = _find(text, needle if isinstance(needle, str) else needle[0],
                  i + 1)
    if not isinstance(needle, str):
        i += needle[0].index(needle[1])
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def check_config_error(prefix, text, needle, *patterns, nth=1):
    """Writes text (a config with {port}/{prefix} placeholders) under
    prefix, runs `eddy -t` and asserts it fails with an error at the
    position of the nth needle whose line matches every regex pattern."""
    text = format_config(text, [free_port()], prefix)
    for d in ("conf", "logs"):
        (prefix / d).mkdir(exist_ok=True)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)
    assert rc == 1, err
    line, col = position(text, needle, nth)
    want = "eddy.yaml:%d:%d: " % (line, col)
    for ln in err.splitlines():
        if want in ln and all(re.search(p, ln) for p in patterns):
            return
    raise AssertionError("no error at %s matching %s in:\n%s"
                         % (want, patterns, err))


class Response:
    """A fully read HTTP response."""

    def __init__(self, status, reason, headers, body, version):
        self.status = status
        self.reason = reason
        self.headers = headers          # http.client.HTTPMessage
        self.body = body                # bytes
        self.version = version          # 10 or 11

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, dict(self.headers),
                                        self.body[:200])


def http_request(port, method="GET", path="/", headers=None, body=None,
                 host="127.0.0.1", timeout=5.0):
    """One request on a new connection; returns a Response."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.reason, r.headers, data, r.version)
    finally:
        conn.close()


def raw_exchange(port, data, host="127.0.0.1", timeout=3.0, shut_wr=False):
    """Send data on a new TCP connection, then read until the peer closes
    or nothing arrives for `timeout` seconds.

    Returns (bytes read, closed) where closed tells whether the peer closed
    (EOF or reset) rather than the read timing out."""
    s = socket.create_connection((host, port), timeout=timeout)
    chunks = []
    closed = False
    try:
        if data:
            s.sendall(data)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + max(timeout * 4, 10)
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not b:
                closed = True
                break
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks), closed


def raw_request(port, data, host="127.0.0.1", timeout=3.0, shut_wr=False):
    """Like raw_exchange, only the bytes."""
    return raw_exchange(port, data, host, timeout, shut_wr)[0]


def read_until_close(sock, timeout=5.0):
    """Read from a connected socket until EOF/reset or timeout.

    Returns (bytes, closed)."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), True
        if not b:
            return b"".join(chunks), True
        chunks.append(b)
    return b"".join(chunks), False


def read_response(sock, timeout=5.0, head_request=False):
    """Read exactly one response (head + Content-Length body, or until
    close when there is no length) from a raw socket; return its bytes.
    Chunked bodies are read up to the terminating 0-size chunk.  With
    head_request, only the head is read (the answer to a HEAD)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    buf = b""

    def more():
        if time.monotonic() >= deadline:
            raise socket.timeout("response not complete in %ss: %r"
                                 % (timeout, buf[:300]))
        b = sock.recv(65536)
        return b

    while b"\r\n\r\n" not in buf:
        b = more()
        if not b:
            return buf
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(br"(?im)^content-length:\s*(\d+)\s*$", head)
    chunked = re.search(br"(?im)^transfer-encoding:.*chunked", head)
    if head_request or status in (204, 304) or 100 <= status < 200:
        return head + b"\r\n\r\n"
    if m:
        n = int(m.group(1))
        while len(rest) < n:
            b = more()
            if not b:
                break
            rest += b
        return head + b"\r\n\r\n" + rest[:n]
    if chunked:
        while not re.search(b"(^|\r\n)0\r\n(.*\r\n)?\r\n", rest, re.S):
            b = more()
            if not b:
                break
            rest += b
        return head + b"\r\n\r\n" + rest
    while True:
        b = more()
        if not b:
            return head + b"\r\n\r\n" + rest
        rest += b


def split_response(data):
    """Split raw bytes of one response into (status, headers dict with
    lower-case names -> list of values, rest after the head)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, "no complete response head in %r" % data[:300]
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})( |$)", lines[0])
    assert m, "bad status line %r" % lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(m.group(1)), headers, rest


# --------------------------------------------------------------------------
# the server under test


class Eddy:
    """One objs/eddy master running in the foreground in its own prefix."""

    def __init__(self, prefix, config, ports=1, env=None, args=(),
                 conf_name="conf/eddy.yaml", port_numbers=None):
        self.prefix = Path(prefix)
        for d in ("conf", "logs", "html"):
            (self.prefix / d).mkdir(parents=True, exist_ok=True)
        self.ports = list(port_numbers) if port_numbers else free_ports(ports)
        self.conf_path = self.prefix / conf_name
        self.env = env
        self.args = list(args)
        self.proc = None
        self.pid = None
        self._seen_workers = set()
        self.write_config(config)

    # -- config

    @property
    def port(self):
        return self.ports[0]

    def format(self, text):
        """Dedent text and replace {port}, {portN} and {prefix}."""
        return format_config(text, self.ports, self.prefix)

    def write_config(self, text, name=None):
        """Write (formatted) text to the main config or to prefix/name."""
        path = self.prefix / name if name else self.conf_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.format(text))
        return path

    def write_file(self, name, data):
        """Write a file under the prefix (str or bytes), return its path."""
        path = self.prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)
        return path

    # -- life cycle

    def start(self, wait=True, timeout=10.0):
        _require_binary()
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self._out = open(self.prefix / "eddy.stdout", "wb")
        self._err = open(self.prefix / "eddy.stderr", "wb")
        self.proc = subprocess.Popen(
            [str(EDDY_BIN), "-p", str(self.prefix), "-c", str(self.conf_path)]
            + self.args,
            cwd=str(self.prefix), env=env, stdin=subprocess.DEVNULL,
            stdout=self._out, stderr=self._err,
            start_new_session=True,   # own process group: easy cleanup
        )
        self.pid = self.proc.pid
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        """Wait until every port accepts a connection; fail with stderr."""
        deadline = time.monotonic() + timeout
        pending = list(self.ports)
        while pending:
            if self.proc.poll() is not None:
                pytest.fail("eddy exited with status %s before listening; "
                            "stderr:\n%s" % (self.proc.returncode,
                                             self.stderr_text()))
            port = pending[0]
            try:
                socket.create_connection(("127.0.0.1", port),
                                         timeout=0.5).close()
                pending.pop(0)
                continue
            except OSError:
                pass
            if time.monotonic() >= deadline:
                pytest.fail("eddy did not listen on port(s) %s within %ss; "
                            "stderr:\n%s" % (pending, timeout,
                                             self.stderr_text()))
            time.sleep(0.05)
        # A port accepts once it is bound, before the master has bound
        # the others, logged its notices and written its pid file; all
        # of that is done when it forks its first worker.
        while (not proc_children(self.proc.pid) and self.proc.poll() is None
               and time.monotonic() < deadline):
            time.sleep(0.01)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=10.0):
        """Wait for the master to exit; return its status or None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=5.0):
        """TERM, wait (bounded), KILL as a last resort; return the status."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
            rc = self.wait_exit(timeout)
            if rc is None:
                try:
                    self.proc.kill()
                except OSError:
                    pass
                rc = self.wait_exit(5)
        self._kill_strays()
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()
        return rc

    def _kill_strays(self):
        """SIGKILL whatever is left of this server: the process group and
        every worker pid ever observed."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            pass
        for w in self._seen_workers:
            st = proc_stat(w)
            if st and st[0] not in ("Z", "X"):
                try:
                    os.kill(w, signal.SIGKILL)
                except OSError:
                    pass

    # -- introspection

    def worker_pids(self):
        """Current live children of the master (its workers)."""
        pids = proc_children(self.pid)
        self._seen_workers.update(pids)
        return pids

    def wait_workers(self, n, timeout=10.0, exclude=()):
        """Wait until the master has exactly n live children (none of them
        in exclude); return their pids, or fail."""
        ex = set(exclude)

        def check():
            pids = self.worker_pids()
            if len(pids) == n and not ex.intersection(pids):
                return (pids,)
            return None

        found = wait_for(check, timeout)
        if not found:
            pytest.fail("expected %d workers (excluding %s), have %s; "
                        "stderr:\n%s" % (n, sorted(ex), self.worker_pids(),
                                         self.stderr_text()))
        return found[0]

    def stderr_text(self):
        try:
            return (self.prefix / "eddy.stderr").read_text(errors="replace")
        except OSError:
            return ""

    def stdout_text(self):
        try:
            return (self.prefix / "eddy.stdout").read_text(errors="replace")
        except OSError:
            return ""

    def log_text(self, name="logs/error.log"):
        try:
            return (self.prefix / name).read_text(errors="replace")
        except OSError:
            return ""

    @property
    def error_log(self):
        return self.log_text("logs/error.log")

    def all_logs(self):
        """stderr plus logs/error.log: wherever error_log points."""
        return self.stderr_text() + "\n" + self.error_log

    # -- clients

    def request(self, method="GET", path="/", headers=None, body=None,
                port=None, timeout=5.0, host="127.0.0.1"):
        return http_request(port or self.port, method, path, headers, body,
                            host=host, timeout=timeout)

    def get(self, path="/", **kw):
        return self.request("GET", path, **kw)

    def raw(self, data, port=None, timeout=3.0, shut_wr=False):
        """Send bytes on a new connection; bytes read until close/timeout."""
        return raw_request(port or self.port, data, timeout=timeout,
                           shut_wr=shut_wr)

    def raw_ex(self, data, port=None, timeout=3.0, shut_wr=False):
        """Like raw, returning (bytes, closed_by_peer)."""
        return raw_exchange(port or self.port, data, timeout=timeout,
                            shut_wr=shut_wr)

    def connect(self, port=None, timeout=5.0):
        """A plain connected socket (caller closes it)."""
        return socket.create_connection(("127.0.0.1", port or self.port),
                                        timeout=timeout)

    def ctl(self, *args, timeout=15):
        """Run `eddy -p PREFIX -c CONF ARGS...` (e.g. ctl('-s', 'reload'))."""
        return run_eddy(["-p", self.prefix, "-c", self.conf_path]
                        + list(args), cwd=self.prefix, timeout=timeout,
                        env=self.env)


# --------------------------------------------------------------------------
# fixtures


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:")


@pytest.fixture
def eddy(tmp_path):
    """Factory: eddy(config, ports=1, env=None, args=(), start=True) -> Eddy.

    Each call gets its own prefix tmp_path/eddyN.  All servers are stopped
    at teardown, whatever the test did.
    """
    made = []

    def make(config, ports=1, env=None, args=(), start=True, timeout=10.0):
        e = Eddy(tmp_path / ("eddy%d" % len(made)), config, ports=ports,
                 env=env, args=args)
        made.append(e)
        if start:
            e.start(timeout=timeout)
        return e

    yield make
    reports = []
    for e in made:
        try:
            e.stop(timeout=3)
        except Exception:  # noqa: BLE001 - teardown must go on
            pass
        try:
            text = e.all_logs()
        except Exception:  # noqa: BLE001
            continue
        for marker in SANITIZER_MARKERS:
            if marker in text:
                reports.append(text[max(0, text.index(marker) - 200):][:3000])
                break
    # A sanitizer build reports memory errors, undefined behaviour and
    # leaks on stderr: any of them fails the test that caused it.
    assert not reports, "sanitizer report:\n" + "\n".join(reports)


@pytest.fixture
def prefix(tmp_path):
    """A bare prefix directory with conf/, logs/ and html/ (for CLI tests)."""
    for d in ("conf", "logs", "html"):
        (tmp_path / d).mkdir(exist_ok=True)
    return tmp_path


class _TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _bounded_test():
    """Bound every test in time without pytest-timeout (not installed)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        raise _TestTimeout("test exceeded %ss" % TEST_TIMEOUT)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------
# shards (t/integration/shards.py): processes side by side take test files
# from one queue, so none waits idle while another has a long file left.


def _claim(queue, path):
    """True for the one process that takes path from the queue dir."""
    name = str(path).replace(os.sep, "_")
    try:
        os.close(os.open(os.path.join(queue, name),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def pytest_runtestloop(session):
    queue = os.environ.get("EDDY_TEST_QUEUE")
    if not queue or session.config.option.collectonly:
        return None  # pytest's own loop
    if (session.testsfailed
            and not session.config.option.continue_on_collection_errors):
        raise session.Interrupted("errors during collection")
    files = {}
    for item in session.items:
        files.setdefault(item.path, []).append(item)
    # The largest files first (size: a fair guess at their time), so the
    # queue ends with short ones.
    order = sorted(files, key=lambda p: (-p.stat().st_size, str(p)))
    todo = []

    def take():
        while order:
            path = order.pop(0)
            if _claim(queue, path):
                todo.extend(files[path])
                return

    take()
    while todo:
        item = todo.pop(0)
        if not todo:
            # The next file is taken before this item's teardown, so the
            # fixtures it shares with it (session scope) are kept.
            take()
        item.config.hook.pytest_runtest_protocol(
            item=item, nextitem=todo[0] if todo else None)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
    return True
