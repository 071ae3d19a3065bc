"""Helpers for the cgi tests: a script directory the workers (`user:
nobody`) can reach, scripts written with chosen modes, and the processes
of a group read from /proc.

    d = cgi_root                        # fixture: a 0755 directory in /tmp
    script(d, "env.py", ENV_PY)         # mode 0755 unless told
    e = eddy(config(d, extra="..."))
"""

import os
import shutil
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from conftest import proc_stat

# The workers run as this user: tests run as root, and cgi refuses root.
USER = "nobody"

# Dumps what a script sees as JSON: environment, argv, cwd and the body's
# length and sha256.
ENV_PY = r'''#!/usr/bin/python3
import hashlib, json, os, sys
data = sys.stdin.buffer.read()
sys.stdout.write("Content-Type: application/json\r\n\r\n")
sys.stdout.write(json.dumps({
    "env": dict(os.environ), "argv": sys.argv, "cwd": os.getcwd(),
    "len": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    "uid": os.getuid()}))
'''


@pytest.fixture
def cgi_root():
    """A directory under /tmp that the workers' user can search, removed
    afterwards (pytest's own tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="eddy-cgi-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def run_dir():
    """A directory the scripts may write into (their pid files), outside
    the root: a root writable by others is refused."""
    d = Path(tempfile.mkdtemp(prefix="eddy-cgi-run-", dir="/tmp"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def script(d, name, text, mode=0o755):
    """Writes a script (dedented text) under d with mode; returns its
    path."""
    p = Path(d) / name
    p.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(p.parent, 0o755)
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    os.chmod(p, mode)
    return p


def config(root, cgi="", extra="", locations="", workers=1):
    """A configuration serving root at /cgi-bin/ (its `cgi` block extended
    by cgi, one key a line at its indentation), as user nobody."""
    block = "".join("          %s\n" % ln for ln in
                    textwrap.dedent(cgi).strip("\n").splitlines())
    return ("workers: %d\nuser: %s\n"
            "error_log: {path: logs/error.log, level: info}\n%s"
            "servers:\n"
            "  - listen: 127.0.0.1:{port}\n"
            "    locations:\n"
            "      /cgi-bin/:\n"
            "        cgi:\n"
            "          alias: %s\n%s%s"
            % (workers, USER, extra, root, block,
               textwrap.indent(textwrap.dedent(locations).strip("\n")
                               + "\n", "      ")
               if locations else ""))


def group_members(pgid):
    """Pids of live processes in process group pgid."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[2] == pgid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return out


def read_pid(path, timeout=5.0):
    """The pid a script wrote into path (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = Path(path).read_text().split()
            if text:
                return [int(x) for x in text]
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError("no pid in %s" % path)


def log_has(e, needle, timeout=3.0):
    """Waits until the error log holds a line with needle; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        for ln in e.error_log.splitlines():
            if needle in ln:
                return ln
        if time.monotonic() > deadline:
            raise AssertionError("no %r in the error log:\n%s"
                                 % (needle, e.error_log[-3000:]))
        time.sleep(0.05)
