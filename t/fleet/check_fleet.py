#!/usr/bin/env python3
"""The fleet scenario of spec fleet.md ("Reference topology", "Tested by"),
run by `make check-fleet` (as root: it makes network namespaces).

Three eddy hosts behind HAProxy in TCP mode, each in its own network
namespace, 16 clients in a fourth; h1 is reloaded 5 times, h2 upgraded to
a new binary, h3 killed and restarted, h1 drained and restarted, while the
clients send a request every 10 ms. Then every request is accounted for:
the only failures allowed are those of sessions HAProxy had with h3 when
it was killed. doc/fleet.md describes the same topology for operators.

    check_fleet.py [--eddy objs/eddy] [--keep] [--allow-missing]
    check_fleet.py --analyze /tmp/eddy-fleet-RUN-...

--keep keeps the run directory (logs, configurations) on success too; it
is always kept on failure. --allow-missing runs with the features this
eddy lacks left out of the configuration (health, drain_delay,
session_ticket_key_file, handover) and reports the assertions that need
them as unverified instead of failing: for building the harness ahead
of the features. --analyze checks a kept run directory again (its
state.json). Exit status: 0 passed (or skipped), 1 failed.

Only the standard library; `ip` (iproute2), `haproxy` and `openssl` are
run as commands."""

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fleet_checks  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SKIP_CAPS = ("fleet: skipped: needs CAP_NET_ADMIN and CAP_SYS_ADMIN "
             "(run as root: sudo make check-fleet)")
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
HARD_LIMIT = 120            # seconds: the whole run, teardown excepted
HOSTS = ("h1", "h2", "h3")
CLIENT_ADDR = "198.19.0.2"
LB_ADDR = "198.19.0.1"
CLIENTS = (["keepalive"] * 8 + ["close"] * 4
           + ["tls12", "tls12", "tls13", "tls13"])
ACCESS_FORMAT = ("$remote_addr $realip_remote_addr $remote_port $connection "
                 "$status")


def lb_link_addr(n):
    return "198.18.%d.1" % n


def host_addr(n):
    return "198.18.%d.2" % n


LOG = []     # a copy of the output, kept in the run's directory


def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    LOG.append(text)


def log(msg):
    say("fleet: %s" % msg)


class Abort(Exception):
    """A signal, the time limit, or a step that cannot go on."""


def which(name):
    return shutil.which(name, path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/sbin:/usr/local/sbin")


def have_caps():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    eff = int(line.split()[1], 16)
                    return all(eff & (1 << c)
                               for c in (CAP_NET_ADMIN, CAP_SYS_ADMIN))
    except OSError:
        pass
    return False


def proc_state(pid):
    """The state letter of /proc/PID/stat, None when there is no process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2]


def alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def wait_until(pred, timeout, interval=0.05):
    end = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() >= end:
            return v
        time.sleep(interval)


def read_pid(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def set_subreaper():
    """Orphans (the new master of an upgrade once the old one exits, the
    workers of a killed master) become our children, so that they are
    reaped (this machine's init may not) and by pid only."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)          # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


class Run:
    """One run: its namespaces, processes and files; torn down always."""

    def __init__(self, args):
        self.args = args
        self.id = os.urandom(3).hex()
        self.dir = Path(tempfile.mkdtemp(prefix="eddy-fleet-%s-" % self.id))
        self.ip = which("ip")
        self.haproxy = which("haproxy")
        self.eddy = Path(args.eddy).resolve()
        self.namespaces = []
        self.started = []            # (pid, graceful signal) of every process
        self.popens = {}
        self.masters = {}            # host -> current master pid
        self.features = {}
        self.missing = []
        self.version = {h: 1 for h in HOSTS}
        self.events = {}             # name -> times, for the checks
        self.stats = []              # (time, {host: status})
        self.stats_stop = threading.Event()
        self.stats_thread = None
        self.torn_down = False

    # -- commands --------------------------------------------------------

    def ns(self, name):
        return "edf-%s-%s" % (self.id, name)

    def run(self, argv, check=True, timeout=30):
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        out = p.stdout.decode(errors="replace")
        if check and p.returncode != 0:
            raise Abort("%s: exit %d: %s" % (" ".join(argv), p.returncode,
                                             out.strip()))
        return p.returncode, out

    def in_ns(self, name, argv):
        return [self.ip, "netns", "exec", self.ns(name)] + list(argv)

    def start(self, ns, argv, out, sig):
        f = open(out, "ab")
        p = subprocess.Popen(self.in_ns(ns, argv), stdout=f,
                             stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        f.close()
        self.popens[p.pid] = p
        self.started.append((p.pid, sig))
        return p

    # -- features --------------------------------------------------------

    def probe_features(self):
        """Which fleet features this eddy has, by asking `eddy -t`."""
        d = self.dir / "probe"
        (d / "keys").mkdir(parents=True)
        (d / "logs").mkdir()
        key = d / "keys" / "ticket.key"
        key.write_bytes(os.urandom(80))
        key.chmod(0o600)
        base = ("servers:\n  - listen: 127.0.0.1:1\n    locations:\n"
                "      /:\n        %s\n")
        probes = {
            "health": base % "health: true",
            "drain_delay": "drain_delay: 2s\n" + base % "return: 200",
            "session_ticket_key_file":
                "session_ticket_key_file: [keys/ticket.key]\n"
                + base % "return: 200",
            "handover": "events: {handover: true}\n" + base % "return: 200",
        }
        for name, text in probes.items():
            (d / "probe.yaml").write_text(text)
            rc, out = self.run([str(self.eddy), "-p", str(d), "-q", "-t",
                                "-c", str(d / "probe.yaml")], check=False)
            self.features[name] = rc == 0
            if rc != 0:
                log("no %s: %s" % (name, out.strip().splitlines()[0]
                                   if out.strip() else "exit %d" % rc))
        self.missing = [k for k, v in self.features.items() if not v]

    # -- topology --------------------------------------------------------

    def add_ns(self, name):
        self.run([self.ip, "netns", "add", self.ns(name)])
        self.namespaces.append(self.ns(name))
        self.run([self.ip, "-n", self.ns(name), "link", "set", "lo", "up"])

    def link(self, a, a_if, a_addr, b, b_if, b_addr):
        """A veth pair made inside namespace a, its peer moved to b: no
        interface ever exists in the root namespace."""
        self.run([self.ip, "-n", self.ns(a), "link", "add", a_if, "type",
                  "veth", "peer", "name", b_if, "netns", self.ns(b)])
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            self.run([self.ip, "-n", self.ns(ns), "addr", "add", addr + "/24",
                      "dev", ifname])
            self.run([self.ip, "-n", self.ns(ns), "link", "set", ifname, "up"])

    def topology(self):
        for name in ("cl", "lb") + HOSTS:
            self.add_ns(name)
        self.link("lb", "cl0", LB_ADDR, "cl", "lb0", CLIENT_ADDR)
        for n, h in enumerate(HOSTS, 1):
            self.link("lb", h, lb_link_addr(n), h, "lb0", host_addr(n))
        # 96,000 short connections in a minute: room beyond TIME_WAIT.
        for name in ("cl", "lb"):
            self.run(self.in_ns(name, ["sysctl", "-q", "-w",
                                       "net.ipv4.ip_local_port_range="
                                       "1024 65000"]))

    # -- eddy hosts ------------------------------------------------------

    def prefix(self, host):
        return self.dir / host

    def config(self, host):
        n = HOSTS.index(host) + 1
        f = self.features
        health = ("health: true" if f["health"] else
                  'return: {status: 200, body: "ok\\n"}')
        lines = [
            "# %s of the fleet scenario (t/fleet/check_fleet.py)" % host,
            "workers: 2",
            "pid_file: logs/eddy.pid",
            "error_log: {path: logs/error.log, level: info}",
            "shutdown_timeout: 5s",
            "keepalive_requests: 100000",
        ]
        if f["drain_delay"]:
            lines.append("drain_delay: 2s")
        if f["session_ticket_key_file"]:
            lines.append("session_ticket_key_file: [keys/ticket.key]")
        lines += [
            "real_ip: {header: proxy_protocol, from: [198.18.0.0/16]}",
            "servers:",
            "  - listen:",
            "      - {address: 8080, proxy_protocol: true, tls: false}",
            "      - {address: 8443, proxy_protocol: true, tls: true}",
            "    tls: {certificate: conf/fleet.pem, key: conf/fleet.key}",
            '    access_log: {path: logs/access.log, format: "%s"}'
            % ACCESS_FORMAT,
            "    headers: {set: {X-Host: %s, X-Config: v%d}}"
            % (host, self.version[host]),
            "    locations:",
            "      = /healthz:",
            "        %s" % health,
            "        access: [{allow: 198.18.0.0/16}, {allow: 127.0.0.1}, "
            "{deny: all}]",
            "      /:",
            '        return: {status: 200, body: "%s v%d %s\\n"}'
            % (host, self.version[host], host_addr(n)),
        ]
        return "\n".join(lines) + "\n"

    def write_config(self, host):
        conf = self.prefix(host) / "conf" / "eddy.yaml"
        tmp = conf.with_suffix(".yaml.tmp")
        tmp.write_text(self.config(host))
        os.replace(tmp, conf)

    def make_hosts(self):
        pki = self.dir / "pki"
        pki.mkdir()
        openssl = which("openssl")
        if not openssl:
            raise Abort("openssl not found (Debian package openssl)")
        self.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-nodes", "-subj",
                  "/CN=fleet.test", "-days", "2", "-keyout",
                  str(pki / "fleet.key"), "-out", str(pki / "fleet.pem")])
        ticket = os.urandom(80)
        for host in HOSTS:
            p = self.prefix(host)
            for sub in ("sbin", "conf", "logs", "keys"):
                (p / sub).mkdir(parents=True)
            shutil.copy2(self.eddy, p / "sbin" / "eddy")
            for name in ("fleet.pem", "fleet.key"):
                shutil.copy2(pki / name, p / "conf" / name)
            key = p / "keys" / "ticket.key"
            key.write_bytes(ticket)
            key.chmod(0o600)
            self.write_config(host)
            self.run([str(p / "sbin" / "eddy"), "-p", str(p), "-q",
                      "--strict", "-t", "-c", str(p / "conf" / "eddy.yaml")])

    def eddy_argv(self, host, *extra):
        p = self.prefix(host)
        return [str(p / "sbin" / "eddy"), "-p", str(p), "-c",
                str(p / "conf" / "eddy.yaml")] + list(extra)

    def pid_file(self, host):
        return self.prefix(host) / "logs" / "eddy.pid"

    def start_host(self, host):
        proc = self.start(host, self.eddy_argv(host),
                          self.prefix(host) / "logs" / "stderr.log",
                          signal.SIGQUIT)
        ok = wait_until(lambda: read_pid(self.pid_file(host)) == proc.pid
                        and len(children(proc.pid)) >= 2, 10)
        if not ok:
            raise Abort("%s: eddy did not start (see %s)"
                        % (host, self.prefix(host) / "logs"))
        self.masters[host] = proc.pid
        return proc.pid

    def signal_cmd(self, host, word):
        """`eddy -s WORD` inside the host's namespace: (exit, output)."""
        return self.run(self.in_ns(host, self.eddy_argv(host, "-s", word)),
                        check=False, timeout=30)

    # -- HAProxy ---------------------------------------------------------

    def haproxy_config(self):
        servers_http = "".join(
            "    server %s %s:8080\n" % (h, host_addr(n))
            for n, h in enumerate(HOSTS, 1))
        servers_https = "".join(
            "    server %s %s:8443 send-proxy-v2 track eddy_http/%s\n"
            % (h, host_addr(n), h) for n, h in enumerate(HOSTS, 1))
        return (
            "global\n"
            "    stats socket %s level admin\n"
            "defaults\n"
            "    mode tcp\n"
            "    log stdout format raw local0\n"
            "    option tcplog\n"
            "    timeout connect 1s\n"
            "    timeout client 30s\n"
            "    timeout server 30s\n"
            "    retries 2\n"
            "    option redispatch 1\n"
            "listen eddy_http\n"
            "    bind %s:80\n"
            "    option httpchk\n"
            "    http-check send meth GET uri /healthz ver HTTP/1.1 "
            "hdr Host fleet.test\n"
            "    http-check expect status 200\n"
            "    default-server send-proxy-v2 check check-send-proxy "
            "inter 500ms fall 2 rise 2\n"
            "%s"
            "listen eddy_https\n"
            "    bind %s:443\n"
            "%s" % (self.dir / "haproxy.sock", LB_ADDR, servers_http,
                    LB_ADDR, servers_https))

    def start_haproxy(self):
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(self.haproxy_config())
        self.run([self.haproxy, "-c", "-q", "-f", str(cfg)])
        # -db: foreground, logs on stdout; USR1 is its graceful stop.
        self.start("lb", [self.haproxy, "-db", "-f", str(cfg)],
                   self.dir / "haproxy.log", signal.SIGUSR1)
        if not wait_until(lambda: self.show_stat() is not None, 10):
            raise Abort("haproxy did not start (see %s)"
                        % (self.dir / "haproxy.log"))

    def show_stat(self):
        """{server: status} of backend eddy_http, None when unreachable."""
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1.0)
            s.connect(str(self.dir / "haproxy.sock"))
            s.sendall(b"show stat\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            s.close()
        except OSError:
            return None
        lines = data.decode(errors="replace").splitlines()
        if not lines or not lines[0].startswith("# "):
            return None
        cols = lines[0][2:].split(",")
        i_px, i_sv, i_st = (cols.index("pxname"), cols.index("svname"),
                            cols.index("status"))
        out = {}
        for line in lines[1:]:
            f = line.split(",")
            if len(f) > i_st and f[i_px] == "eddy_http" and f[i_sv] in HOSTS:
                out[f[i_sv]] = f[i_st]
        return out

    def poll_stats(self):
        while not self.stats_stop.is_set():
            t = time.time()
            st = self.show_stat()
            if st is not None:
                self.stats.append((t, st))
            self.stats_stop.wait(max(0.0, t + 0.1 - time.time()))

    def status(self, host):
        return self.stats[-1][1].get(host, "") if self.stats else ""

    def wait_up(self, hosts, timeout=15):
        ok = wait_until(lambda: all(self.status(h) == "UP" for h in hosts),
                        timeout, 0.1)
        if not ok:
            raise Abort("not UP within %d s: %s" % (timeout, {
                h: self.status(h) for h in hosts}))
        return time.time()

    # -- clients ---------------------------------------------------------

    def start_clients(self):
        self.stopfile = self.dir / "clients.stop"
        deadline = time.time() + HARD_LIMIT
        self.client_files = []
        for i, kind in enumerate(CLIENTS):
            port = 443 if kind.startswith("tls") else 80
            out = self.dir / "clients" / ("%02d-%s.tsv" % (i, kind))
            out.parent.mkdir(exist_ok=True)
            self.client_files.append((kind, out))
            self.start("cl",
                       [sys.executable, str(HERE / "fleet_client.py"), kind,
                        "%s:%d" % (LB_ADDR, port), str(out),
                        str(self.stopfile), "%.3f" % deadline],
                       self.dir / "clients" / "stderr.log", signal.SIGTERM)
            if kind == "keepalive" and CLIENTS[i + 1] != "keepalive":
                # The keep-alive connections first, one after the other in
                # HAProxy's round robin: each host gets some of them.
                time.sleep(1.0)

    def stop_clients(self):
        self.stopfile.write_text("")
        end = time.time() + 8
        for pid, p in list(self.popens.items()):
            if "fleet_client.py" in " ".join(map(str, p.args)):
                try:
                    p.wait(max(0.1, end - time.time()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    # -- the scenario ----------------------------------------------------

    def mark(self, name, **kw):
        kw.setdefault("t", time.time())
        self.events[name] = kw
        return kw["t"]

    def step_reloads(self):
        host = "h1"
        self.mark("s1_start")
        reloads = []
        for _ in range(5):
            self.version[host] += 1
            self.write_config(host)
            t0 = time.time()
            rc, out = self.signal_cmd(host, "reload")
            t1 = time.time()
            reloads.append({"version": self.version[host], "start": t0,
                            "end": t1, "rc": rc, "out": out.strip()})
            log("h1 reload to v%d: exit %d (%.2f s)"
                % (self.version[host], rc, t1 - t0))
            time.sleep(1.0)
        self.mark("s1_end", reloads=reloads)

    def step_upgrade(self):
        host = "h2"
        p = self.prefix(host)
        old = self.masters[host]
        self.mark("s2_start")
        new_bin = p / "sbin" / "eddy.new"
        shutil.copy2(self.eddy, new_bin)
        os.replace(new_bin, p / "sbin" / "eddy")
        os.kill(old, signal.SIGUSR2)
        oldbin = p / "logs" / "eddy.pid.oldbin"

        def new_master():
            pid = read_pid(self.pid_file(host))
            if pid and pid != old and read_pid(oldbin) == old \
                    and len(children(pid)) >= 2:
                return pid
            return None
        new = wait_until(new_master, 10)
        if not new:
            raise Abort("h2: the new binary did not start (see %s)"
                        % (p / "logs"))
        self.started.append((new, signal.SIGQUIT))
        self.masters[host] = new
        log("h2 upgrade: new master %d" % new)
        time.sleep(1.0)
        self.mark("s2_winch")
        os.kill(old, signal.SIGWINCH)
        # The new master is a child of the old one: wait for the others.
        if not wait_until(lambda: set(children(old)) <= {new}, 10):
            raise Abort("h2: old workers still running 10 s after WINCH")
        time.sleep(0.5)
        self.mark("s2_quit")
        os.kill(old, signal.SIGQUIT)
        self.popens[old].wait(10)
        self.mark("s2_end", old=old, new=new)

    def step_kill(self):
        host = "h3"
        master = self.masters[host]
        pids = [master] + children(master)
        self.mark("s3_start")
        t = self.mark("s3_kill", pids=pids)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # The kernel closes the listeners once the last process is gone:
        # HAProxy may connect in between, and lose that session too.
        wait_until(lambda: not any(alive(p) for p in pids), 2, 0.0005)
        gone = self.mark("s3_gone")
        log("h3 killed at T=%.3f, gone %.1f ms later: %s"
            % (t, (gone - t) * 1000, pids))
        for pid in pids:
            reap(pid)
        time.sleep(max(0.0, t + 2.0 - time.time()))
        self.mark("s3_restart")
        self.start_host(host)
        up = self.wait_up([host])
        self.mark("s3_end", up=up)

    def step_drain(self):
        host = "h1"
        master = self.masters[host]
        self.mark("s4_start")
        rc, out = self.signal_cmd(host, "quit")
        self.popens[master].wait(5)
        self.mark("s4_stopped", rc=rc, out=out.strip())
        log("h1 -s quit: exit %d after %.2f s" % (
            rc, time.time() - self.events["s4_start"]["t"]))
        self.start_host(host)
        up = self.wait_up([host])
        self.mark("s4_end", up=up)

    def scenario(self):
        self.probe_features()
        if self.missing:
            what = ", ".join(self.missing)
            if not self.args.allow_missing:
                raise Abort("this eddy lacks %s (spec fleet.md); "
                            "FLEET_ARGS=--allow-missing runs without"
                            % what)
            log("running without %s (--allow-missing)" % what)
        self.topology()
        self.make_hosts()
        log("run %s in %s" % (self.id, self.dir))
        for host in HOSTS:
            self.start_host(host)
        self.start_haproxy()
        self.stats_thread = threading.Thread(target=self.poll_stats,
                                             daemon=True)
        self.stats_thread.start()
        self.mark("all_up", t=self.wait_up(HOSTS))
        self.start_clients()
        self.mark("clients_started")
        time.sleep(3)
        for step in (self.step_reloads, self.step_upgrade, self.step_kill,
                     self.step_drain):
            step()
            time.sleep(3)
        self.mark("clients_stop")
        self.stop_clients()
        time.sleep(0.5)

    def save_state(self):
        """What the checks need beside the files, for --analyze."""
        (self.dir / "state.json").write_text(json.dumps({
            "id": self.id, "events": self.events, "stats": self.stats,
            "missing": self.missing,
            "clients": [(k, str(f.relative_to(self.dir)))
                        for k, f in self.client_files]}))

    # -- teardown --------------------------------------------------------

    def teardown(self):
        """QUIT (USR1 for HAProxy) to every process started, SIGKILL to
        what is left 5 s later (and to anything still in the run's
        namespaces), then delete the namespaces."""
        if self.torn_down:
            return
        self.torn_down = True
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        self.stats_stop.set()
        if getattr(self, "stopfile", None) is not None:
            try:
                self.stopfile.write_text("")
            except OSError:
                pass
        for pid, sig in self.started:
            if alive(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        wait_until(lambda: not any(alive(p) for p, _ in self.started), 5, 0.1)
        for pid, _ in self.started:
            if alive(pid):
                log("teardown: SIGKILL to %d" % pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ns in self.namespaces:
            _, out = self.run([self.ip, "netns", "pids", ns], check=False)
            for pid in (int(x) for x in out.split() if x.isdigit()):
                log("teardown: SIGKILL to %d, left in %s" % (pid, ns))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pid, _ in self.started:
            wait_until(lambda: not alive(pid), 2, 0.02)
            reap(pid)
        for p in self.popens.values():
            try:
                p.wait(1)
            except subprocess.TimeoutExpired:
                pass
        # Orphans that became ours (see set_subreaper) and exited since.
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        for ns in self.namespaces:
            self.run([self.ip, "netns", "del", ns], check=False)
        if self.stats_thread is not None:
            self.stats_thread.join(2)


class Kept:
    """A kept run directory, for --analyze: what report() reads."""

    def __init__(self, path):
        self.dir = Path(path).resolve()
        state = json.loads((self.dir / "state.json").read_text())
        self.id = state["id"]
        self.events = state["events"]
        self.stats = state["stats"]
        self.missing = state["missing"]
        self.client_files = [(k, self.dir / f) for k, f in state["clients"]]

    def prefix(self, host):
        return self.dir / host


def on_signal(signum, frame):
    raise Abort("interrupted by signal %d" % signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eddy", default=str(REPO / "objs" / "eddy"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--allow-missing", action="store_true")
    ap.add_argument("--analyze", metavar="DIR",
                    help="check a kept run's directory again")
    args = ap.parse_args()
    if args.analyze:
        ok = fleet_checks.report(Kept(args.analyze), [], 0, say)
        return 0 if ok else 1

    if not have_caps():
        print(SKIP_CAPS)
        return 0
    for tool, pkg in (("ip", "iproute2"), ("haproxy", "haproxy")):
        if not which(tool):
            print("fleet: skipped: needs %s (Debian package %s)" % (tool, pkg))
            return 0
    if not os.access(args.eddy, os.X_OK):
        print("fleet: %s not found: build it first (make)" % args.eddy)
        return 1

    set_subreaper()
    run = Run(args)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(HARD_LIMIT)
    error = None
    began = time.time()
    try:
        run.scenario()
    except Abort as e:
        error = str(e)
    except Exception as e:  # report it, tear down all the same
        traceback.print_exc()
        error = "%s: %s" % (type(e).__name__, e)
    finally:
        signal.alarm(0)
        run.teardown()
    _, out = run.run([run.ip, "netns", "list"], check=False)
    left = [ns for ns in run.namespaces if ns in out.split()]

    if error:
        log("FAILED: %s" % error)
        log("files kept in %s" % run.dir)
        (run.dir / "report.txt").write_text("\n".join(LOG) + "\n")
        return 1
    run.save_state()
    ok = fleet_checks.report(run, left, time.time() - began, say)
    if ok and not args.keep:
        shutil.rmtree(run.dir, ignore_errors=True)
    else:
        log("files kept in %s" % run.dir)
        (run.dir / "report.txt").write_text("\n".join(LOG) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
