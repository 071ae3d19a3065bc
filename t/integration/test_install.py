"""The install layout (operator.md): configure bakes the paths, `eddy -V`
prints them, `-p` defaults to the prefix, `make install DESTDIR=` stages
a tree that checks, keeps edited files, lays out --with-fhs as the table
says; the man pages are lint-clean and name every key `-T` prints."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import EDDY_BIN, REPO, run_eddy

UNIT = """[Unit]
Description=eddy web server
After=network-online.target
[Service]
Type=notify
NotifyAccess=all
ExecStartPre=SBIN -t -q
ExecStart=SBIN
ExecReload=SBIN -s reload
KillSignal=SIGQUIT
KillMode=mixed
TimeoutStopSec=30s
Restart=on-failure
LimitNOFILE=65536
[Install]
WantedBy=multi-user.target
"""

LOGROTATE = """LOGS {
    daily
    rotate 14
    missingok
    notifempty
    compress
    delaycompress
    sharedscripts
    postrotate
        SBIN -s reopen >/dev/null 2>&1 || true
    endscript
}
"""


def make(args, cwd=REPO, timeout=240):
    p = subprocess.run(["make", "--no-print-directory"] + args, cwd=str(cwd),
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def baked():
    """The paths `eddy -V` prints, as a dict."""
    rc, out, _ = run_eddy(["-V"])
    assert rc == 0
    return dict(re.findall(r"^([a-z ]+ (?:path|dir)|prefix): (.*)$", out,
                           re.M))


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file())


def copy_tree(dst):
    """The files configure and make read, copied to dst."""
    dst.mkdir(parents=True)
    for name in ("configure", "Makefile", "auto", "modules", "src", "conf",
                 "html", "doc"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dst / name)
        else:
            shutil.copy2(src, dst / name)
    return dst


def configure(tree, *args):
    p = subprocess.run(["sh", "./configure"] + list(args), cwd=str(tree),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return (tree / "objs" / "ed_auto_config.h").read_text()


def install_prebuilt(tree, destdir):
    """make install in a configured copy with this build's binary: the
    layout depends on configure alone (-o: objs/eddy is not rebuilt)."""
    shutil.copy2(EDDY_BIN, tree / "objs" / "eddy")
    rc, out = make(["-f", "objs/Makefile", "-o", "objs/eddy", "install",
                    "DESTDIR=%s" % destdir], cwd=tree)
    assert rc == 0, out
    return out


# --------------------------------------------------------------------------


def test_V_lists_every_baked_path():
    paths = baked()
    assert paths["prefix"] == "/usr/local/eddy" or paths["prefix"]
    for key in ("prefix", "sbin path", "conf path", "pid path",
                "error log path", "http log path", "html path", "man dir",
                "systemd unit dir", "logrotate dir"):
        assert key in paths, paths


def test_p_defaults_to_the_prefix_not_the_cwd(prefix):
    # A config in the current directory is not read: the prefix's is.
    (prefix / "conf" / "eddy.yaml").write_text("workers: 1\n")
    rc, out, err = run_eddy(["-t"], cwd=prefix)
    p = baked()
    conf = p["conf path"]
    want = conf if conf.startswith("/") else p["prefix"] + "/" + conf
    assert want in err, err
    assert str(prefix) not in err, err


def test_install_destdir_stages_a_tree_that_checks(tmp_path):
    dest = tmp_path / "stage"
    rc, out = make(["install", "DESTDIR=%s" % dest])
    assert rc == 0, out
    p = baked()
    root = Path(str(dest) + p["prefix"])
    sbin = p["sbin path"]
    have = files_under(dest)
    rel = str(root.relative_to(dest))
    for f in ("sbin/eddy", "conf/eddy.yaml", "conf/mime.types",
              "conf/conf.d/default.yaml", "html/index.html",
              "share/man/man8/eddy.8", "share/man/man5/eddy.yaml.5"):
        assert rel + "/" + f in have, have
    assert (root / "logs").is_dir()
    unit = dest / p["systemd unit dir"].lstrip("/") / "eddy.service"
    assert unit.read_text() == UNIT.replace("SBIN", sbin)
    rot = dest / p["logrotate dir"].lstrip("/") / "eddy"
    assert rot.read_text() == LOGROTATE.replace("SBIN", sbin).replace(
        "LOGS", p["prefix"] + "/logs/*.log")
    main = (root / "conf" / "eddy.yaml").read_text()
    assert re.search(r"^include: conf\.d/\*\.yaml$", main, re.M), main
    # Globals only: no path in the main file.
    assert not re.search(r"^(pid_file|error_log|root|access_log):", main,
                         re.M), main
    site = (root / "conf" / "conf.d" / "default.yaml").read_text()
    assert "{address: 80, default: true}" in site, site
    # The staged binary checks the staged tree.
    rc, out, err = run_eddy(["-p", root, "-t"], cwd="/")
    assert rc == 0, err
    assert "%s/conf/eddy.yaml test is successful" % root in err, err
    st = subprocess.run([str(root / "sbin" / "eddy"), "-p", str(root), "-T"],
                        capture_output=True, text=True, timeout=10)
    assert st.returncode == 0, st.stderr
    assert re.search(r"- address: 0\.0\.0\.0:80\n\s+default: true",
                     st.stdout), \
        st.stdout
    # Nothing was written outside DESTDIR: every file is one of ours.
    assert all(not f.startswith("..") for f in have)


def test_second_install_keeps_edited_files(tmp_path):
    dest = tmp_path / "stage"
    rc, out = make(["install", "DESTDIR=%s" % dest])
    assert rc == 0, out
    root = Path(str(dest) + baked()["prefix"])
    main = root / "conf" / "eddy.yaml"
    edited = main.read_text() + "workers: 3\n"
    main.write_text(edited)
    site = root / "conf" / "conf.d" / "default.yaml"
    site_text = site.read_text()
    rc, out = make(["install", "DESTDIR=%s" % dest])
    assert rc == 0, out
    assert main.read_text() == edited
    assert (root / "conf" / "eddy.yaml.default").is_file()
    assert "workers: 3" not in (root / "conf" / "eddy.yaml.default") \
        .read_text()
    # Unchanged files get no .default beside them.
    assert site.read_text() == site_text
    assert not (root / "conf" / "conf.d" / "default.yaml.default").exists()


def test_install_under_another_prefix_is_refused(tmp_path):
    dest = tmp_path / "stage"
    rc, out = make(["install", "PREFIX=/opt/other", "DESTDIR=%s" % dest])
    assert rc != 0
    assert "run ./configure --prefix=/opt/other" in out, out
    assert not dest.exists()


def test_installed_tree_checks_from_root(tmp_path):
    tree = copy_tree(tmp_path / "src")
    inst = tmp_path / "inst"
    etc = tmp_path / "etc"
    configure(tree, "--prefix=%s" % inst,
              "--conf-path=%s/eddy.yaml" % etc,
              "--pid-path=%s/run/eddy.pid" % tmp_path,
              "--http-log-path=%s/weblogs/access.log" % tmp_path,
              "--systemd-unit-dir=%s/unit" % tmp_path,
              "--logrotate-dir=%s/logrotate.d" % tmp_path)
    rc, out = make(["-j2", "install"], cwd=tree)
    assert rc == 0, out[-3000:]
    eddy = inst / "sbin" / "eddy"
    v = subprocess.run([str(eddy), "-V"], capture_output=True, text=True,
                       timeout=10).stdout
    assert "prefix: %s\n" % inst in v, v
    assert "conf path: %s/eddy.yaml\n" % etc in v, v
    assert "pid path: %s/run/eddy.pid\n" % tmp_path in v, v
    assert (etc / "conf.d" / "default.yaml").is_file()
    assert (etc / "mime.types").is_file()
    # From /, no -p and no -c: the compiled-in prefix and config.
    t = subprocess.run([str(eddy), "-t"], cwd="/", capture_output=True,
                       text=True, timeout=10)
    assert t.returncode == 0, t.stderr
    assert "configuration file %s/eddy.yaml test is successful" % etc \
        in t.stderr
    # The compiled-in access log and the mime.types beside the
    # configuration file are the ones used.
    t = subprocess.run([str(eddy), "-T"], cwd="/", capture_output=True,
                       text=True, timeout=10)
    assert t.returncode == 0, t.stderr
    assert "access_log: %s/weblogs/access.log\n" % tmp_path in t.stdout, \
        t.stdout
    with open(etc / "mime.types", "a") as f:
        f.write("application/x-eddy-test eddytest\n")
    (inst / "html" / "t.eddytest").write_bytes(b"x")
    t = subprocess.run([str(eddy), "explain", "http://localhost/t.eddytest"],
                       cwd="/", capture_output=True, text=True, timeout=10)
    assert t.returncode == 0, t.stderr
    assert "application/x-eddy-test" in t.stdout, t.stdout
    # An absolute compiled-in path does not follow -p; a relative one
    # (the default site's root, html) does.
    other = tmp_path / "other"
    t = subprocess.run([str(eddy), "-p", str(other), "-t"], cwd="/",
                       capture_output=True, text=True, timeout=10)
    assert t.returncode == 1
    assert "%s/eddy.yaml" % etc in t.stderr, t.stderr
    assert "%s/html" % other in t.stderr, t.stderr
    (other / "html").mkdir(parents=True)
    (other / "logs").mkdir()
    t = subprocess.run([str(eddy), "-p", str(other), "-t"], cwd="/",
                       capture_output=True, text=True, timeout=10)
    assert t.returncode == 0, t.stderr


def test_fhs_layout(tmp_path):
    tree = copy_tree(tmp_path / "src")
    h = configure(tree, "--with-fhs")
    for name, value in (("PREFIX", "/usr/share/eddy"),
                        ("SBIN_PATH", "/usr/sbin/eddy"),
                        ("CONF_PATH", "/etc/eddy/eddy.yaml"),
                        ("PID_PATH", "/run/eddy.pid"),
                        ("ERROR_LOG_PATH", "/var/log/eddy/error.log"),
                        ("HTTP_LOG_PATH", "/var/log/eddy/access.log"),
                        ("HTML_PATH", "/usr/share/eddy/html"),
                        ("MAN_DIR", "/usr/share/man"),
                        ("LOGROTATE_DIR", "/etc/logrotate.d")):
        assert '#define ED_%s "%s"\n' % (name, value) in h, h
    unitdir = subprocess.run(
        ["pkg-config", "--variable=systemdsystemunitdir", "systemd"],
        capture_output=True, text=True).stdout.strip() or "/lib/systemd/system"
    assert '#define ED_SYSTEMD_UNIT_DIR "%s"\n' % unitdir in h, h
    dest = tmp_path / "stage"
    install_prebuilt(tree, dest)
    have = files_under(dest)
    for f in ("usr/sbin/eddy", "etc/eddy/eddy.yaml", "etc/eddy/mime.types",
              "etc/eddy/conf.d/default.yaml", "usr/share/eddy/html/index.html",
              "usr/share/man/man8/eddy.8", "usr/share/man/man5/eddy.yaml.5",
              unitdir.lstrip("/") + "/eddy.service", "etc/logrotate.d/eddy"):
        assert f in have, have
    assert (dest / "var/log/eddy").is_dir()
    site = (dest / "etc/eddy/conf.d/default.yaml").read_text()
    assert "root: /usr/share/eddy/html\n" in site, site
    rot = (dest / "etc/logrotate.d/eddy").read_text()
    assert rot == LOGROTATE.replace("SBIN", "/usr/sbin/eddy").replace(
        "LOGS", "/var/log/eddy/*.log")
    unit = (dest / unitdir.lstrip("/") / "eddy.service").read_text()
    assert unit == UNIT.replace("SBIN", "/usr/sbin/eddy")


def test_no_skips_a_file(tmp_path):
    tree = copy_tree(tmp_path / "src")
    configure(tree, "--prefix=/opt/e", "--man-dir=no",
              "--systemd-unit-dir=no", "--logrotate-dir=no",
              "--html-path=no")
    dest = tmp_path / "stage"
    install_prebuilt(tree, dest)
    have = files_under(dest)
    assert "opt/e/sbin/eddy" in have and "opt/e/conf/eddy.yaml" in have
    assert not [f for f in have if "man" in f or "eddy.service" in f
                or "logrotate" in f or "html" in f], have


# --------------------------------------------------------------------------
# man pages

needs_mandoc = pytest.mark.skipif(shutil.which("mandoc") is None,
                                  reason="mandoc is not installed "
                                  "(./configure --install-deps)")


@needs_mandoc
def test_check_man_is_silent():
    rc, out = make(["-s", "-f", "objs/Makefile", "check-man"])
    assert rc == 0 and out == "", out


@needs_mandoc
def test_check_man_reports_a_bad_page(tmp_path):
    bad = tmp_path / "bad.5"
    bad.write_text(".Dd December 7, 2025\n.Dt BAD 5\n.Os\n.Sh NAME\n"
                   ".Nm bad\n.Nd a page\n.Sh DESCRIPTION\n.Xr\n")
    rc, out = make(["-s", "-f", "objs/Makefile", "check-man",
                    "MANPAGES=%s" % bad])
    assert rc != 0
    assert "bad.5" in out, out


RICH = """
workers: 2
user: nobody
error_log: {path: logs/error.log, level: notice}
open_file_cache: {max: 100, valid: 10s}
default_type: text/plain
access_log: {path: logs/access.log, format: json}
gzip: {enabled: true, level: 4, min_length: 100, types: [text/html]}
real_ip: {from: [10.0.0.0/8]}
session_ticket_key_file: [TICKETS]
maps:
  ver: {source: $http_x_v, default: v1, hostnames: false,
        entries: {"2": v2}}
caches:
  main: {path: cache/main, max_size: 1g, inactive: 5m, keys_zone: 1m,
         levels: "1:2", max_entry_size: 10m, min_free: 0}
upstreams:
  be:
    balance: hash
    hash_key: $uri
    keepalive: 4
    keepalive_timeout: 30s
    servers:
      - {address: "127.0.0.1:9", weight: 2, max_fails: 2, fail_timeout: 5s}
      - {address: "127.0.0.1:10", backup: true}
    health_check: {path: /h, interval: 5s, timeout: 1s, fails: 2,
                   passes: 2, expect_status: 200}
servers:
  - listen: [{address: "127.0.0.1:8443", default: true, backlog: 100}]
    names: [a.example]
    tls: {certificate: CERT, key: KEY, session_tickets: false,
          protocols: [TLSv1.3]}
    root: html
    error_pages: {404: /404.html}
    headers: {set: {X-A: b}, add: {X-B: c}, remove: [X-Powered-By]}
    access: [{allow: 127.0.0.1}, {deny: all}]
    limit_req: {rate: 10r/s, burst: 5, key: $remote_addr, status: 503}
    limit_conn: {max: 10, key: $remote_addr, status: 503, zone_size: 1m}
    rewrite: [{regex: "^/old/(.*)$", replacement: /new/$1, flag: last}]
    locations:
      /:
        static: {index: [index.html], autoindex: true, expires: 1h,
                 try_files: [$uri, =404], precompressed: [gzip],
                 dotfiles: deny, symlinks: follow, methods: [GET],
                 etag: true, last_modified: true, ranges: true}
      /api/:
        proxy: {pass: be, set_headers: {X-Y: z}, remove_headers: [Cookie],
                next_upstream: [error], connect_timeout: 1s,
                read_timeout: 5s, send_timeout: 5s, next_upstream_tries: 2,
                pass_host: true, forwarded: true, buffer_size: 16k,
                websocket: true}
      /c/:
        proxy: {pass: be, cache: main, cache_valid: {200: 1m},
                cache_lock: {enabled: true, timeout: 5s}}
      /s:
        proxy: {pass: "https://127.0.0.1:9", tls_verify: false,
                tls_server_name: x}
      /al/:
        static: {alias: html/}
      = /r:
        return: {status: 200, body: hi, content_type: text/plain}
      = /x:
        redirect: {to: /y, status: 302}
      = /st:
        status: json
      = /_auth:
        internal: true
        return: 204
      /in/:
        auth_request: {uri: /_auth, timeout: 2s, copy_headers: [X-User]}
        return: 200
"""


def dumped_keys(text):
    """Every key of the YAML -T prints, except names (of upstreams,
    locations, headers, error pages) that are not keys."""
    keys, stack = set(), []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"^(\s*)(- )?([^\s:#][^:]*):(\s|$)", line)
        if not m:
            continue
        indent = len(m.group(1)) + (2 if m.group(2) else 0)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = m.group(3).strip().strip('"')
        parent = stack[-1][1] if stack else None
        if parent not in ("upstreams", "locations", "error_pages", "set",
                          "add", "set_headers", "maps", "caches") \
                and re.match(r"^[a-z_][a-z0-9_]*$", key):
            keys.add(key)
        stack.append((indent, key))
        # Flow maps written on one line.
        for k in re.findall(r"[{,]\s*([a-z_][a-z0-9_]*):", line):
            keys.add(k)
    return keys


def test_every_dumped_key_is_in_the_man_page(prefix):
    cert = prefix / "c.pem"
    key = prefix / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=a", "-days", "2"], check=True,
                   capture_output=True, timeout=60)
    tickets = prefix / "ticket.key"
    tickets.write_bytes(os.urandom(80))
    tickets.chmod(0o600)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(RICH.replace("CERT", str(cert)).replace("KEY", str(key))
                    .replace("TICKETS", str(tickets)))
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-T"], cwd=prefix)
    assert rc == 0, err
    keys = dumped_keys(out)
    assert {"workers", "events", "max_connections", "listen", "static",
            "health_check", "expect_status", "tls_verify", "proxy_protocol",
            "real_ip", "from", "recursive",
            "session_ticket_key_file", "auth_request", "copy_headers",
            "internal", "maps", "source", "entries", "hostnames",
            "limit_conn", "max", "zone_size", "rewrite", "regex",
            "replacement", "flag"} <= keys, keys
    page = (REPO / "doc" / "eddy.yaml.5").read_text()
    documented = set()
    for words in re.findall(r"\bIc ([^\n]+)", page):
        for w in re.split(r"[\s,.|]+", words):
            documented.add(w)
    missing = sorted(keys - documented)
    assert not missing, "keys -T prints that eddy.yaml(5) lacks: %s" % missing
