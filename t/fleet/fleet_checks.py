"""The assertions of the fleet scenario (spec fleet.md, "Tested by", first
bullet), made after teardown from what the run left: the clients' records,
HAProxy's TCP log, its state polled every 100 ms, and each host's access
log. report() prints one line per assertion and returns whether all
passed."""

import re
import time
from collections import defaultdict

HOSTS = ("h1", "h2", "h3")
CLIENT_ADDR = "198.19.0.2"
SLACK = 0.1         # s: a request sent this long after `-s reload` returned
DRAIN = 2.0         # s: the hosts' drain_delay

TCPLOG = re.compile(
    r"^(?P<ci>[0-9.]+):(?P<cp>\d+) \[(?P<t>[^\]]+)\] (?P<ft>\S+) "
    r"(?P<b>[^/\s]+)/(?P<s>\S+) (?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tt>\+?-?\d+)"
    r" (?P<B>\+?\d+) (?P<ts>\S+) \d+/\d+/\d+/\d+/(?P<rc>\+?\d+) ")


class Request:
    __slots__ = ("client", "kind", "start", "end", "port", "new", "outcome",
                 "status", "host", "config", "reused")

    def __init__(self, client, kind, fields):
        self.client = client
        self.kind = kind
        self.start = float(fields[0])
        self.end = float(fields[1])
        self.port = int(fields[2])
        self.new = fields[3] == "1"
        self.outcome = fields[4]
        self.status = int(fields[5])
        self.host = fields[6]
        self.config = fields[7]
        self.reused = fields[8]

    @property
    def ok(self):
        return self.outcome == "ok"

    def __repr__(self):
        return "%s#%d %s port %d %s %s %s" % (
            self.kind, self.client, fmt_t(self.start), self.port,
            self.outcome, self.host, self.config)


T0 = [0.0]


def fmt_t(t):
    return "t+%.3f" % (t - T0[0])


def load_requests(files):
    out = []
    for i, (kind, path) in enumerate(files):
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            f = line.split("\t")
            if len(f) == 9:
                out.append(Request(i, kind, f))
    out.sort(key=lambda r: r.start)
    return out


def haproxy_ms(s):
    """%t, `07/Dec/2026:06:30:00.123` in local time, as milliseconds of
    time.time()."""
    base, _, ms = s.partition(".")
    return int(time.mktime(time.strptime(base, "%d/%b/%Y:%H:%M:%S"))) \
        * 1000 + int(ms or 0)


def load_sessions(path):
    sessions = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return sessions
    for line in text.splitlines():
        m = TCPLOG.match(line)
        if not m:
            continue
        d = m.groupdict()
        d["ms"] = haproxy_ms(d["t"])
        d["accept"] = d["ms"] / 1000.0
        d["cp"] = int(d["cp"])
        d["retries"] = int(d["rc"].lstrip("+"))
        d["line"] = line
        sessions.append(d)
    return sessions


def load_access(path):
    lines = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return lines
    for line in text.splitlines():
        f = line.split()
        if len(f) == 5:
            lines.append(f)
    return lines


class Checks:
    def __init__(self, run):
        self.run = run
        self.ev = run.events
        self.results = []           # (verdict, name, detail)
        T0[0] = self.ev["all_up"]["t"]
        self.requests = load_requests(run.client_files)
        self.sessions = load_sessions(run.dir / "haproxy.log")
        self.by_port = defaultdict(list)
        for s in self.sessions:
            if s["ci"] == CLIENT_ADDR:
                self.by_port[s["cp"]].append(s)
        for v in self.by_port.values():
            v.sort(key=lambda s: s["accept"])

    def t(self, name, key="t"):
        return self.ev[name][key]

    def record(self, name, ok, detail="", needs=()):
        lacking = [f for f in needs if f in self.run.missing]
        if ok:
            verdict = "PASS"
        elif lacking:
            verdict = "UNVERIFIED (eddy lacks %s)" % ", ".join(lacking)
        else:
            verdict = "FAIL"
        self.results.append((verdict, name, detail))

    # -- failures --------------------------------------------------------

    def session_of(self, r):
        """HAProxy's session of a request: same frontend and client port
        (an HTTP and an HTTPS client may use the same port at once),
        accepted before the request ended, the latest such."""
        ft = "eddy_https" if r.kind.startswith("tls") else "eddy_http"
        best = None
        for s in self.by_port.get(r.port, ()):
            if s["ft"] == ft and s["accept"] <= r.end + 0.01:
                best = s
        return best

    def failures(self):
        # T is when SIGKILL was sent; its processes are gone (their
        # listeners closed) a moment later, and %t counts whole
        # milliseconds: a session accepted by then was h3's at T.
        kill = int(self.t("s3_gone") * 1000)
        used = set()
        allowed, others, drain = [], [], []
        s4 = (self.t("s4_start"), self.t("s4_end"))
        for r in self.requests:
            if r.ok:
                continue
            s = self.session_of(r) if r.port else None
            key = s and (s["cp"], s["accept"])
            if s and s["s"] == "h3" and s["ms"] <= kill \
                    and key not in used:
                used.add(key)
                allowed.append(r)
            elif s4[0] <= r.start <= s4[1]:
                drain.append((r, s))
            else:
                others.append((r, s))
        self.allowed = allowed

        def show(lst):
            return "; ".join("%r (haproxy: %s)" % (r, s["line"] if s else
                                                    "no session")
                             for r, s in lst[:5]) + \
                (" ..." if len(lst) > 5 else "")
        self.record("no failure beyond the allowed ones (%d allowed: h3's "
                    "sessions at T)" % len(allowed), not others,
                    "%d failures: %s" % (len(others), show(others)))
        self.record("no failure while h1 drains (step 4)", not drain,
                    "%d failures: %s" % (len(drain), show(drain)),
                    needs=("drain_delay", "health"))

    # -- HAProxy's view --------------------------------------------------

    def states(self, host, a, b):
        return [(t, st.get(host, "")) for t, st in self.run.stats
                if a <= t <= b]

    def never_down(self, host, a, b, what):
        st = self.states(host, a, b)
        down = [(t, s) for t, s in st if s.startswith("DOWN")]
        enough = len(st) >= (b - a) / 0.1 * 0.5
        self.record("%s never DOWN during %s" % (host, what),
                    enough and not down,
                    "%d samples, DOWN at %s" % (len(st), ", ".join(
                        "%s (%s)" % (fmt_t(t), s) for t, s in down[:3])))

    def drain_order(self):
        """HAProxy marks h1 DOWN within drain_delay (2 s) of its QUIT,
        when its listeners close, and so never connects to it in vain;
        its health checks got 503 meanwhile."""
        a, stopped, b = (self.t("s4_start"), self.t("s4_stopped"),
                         self.t("s4_end"))
        down = [t for t, s in self.states("h1", a, min(stopped, a + DRAIN))
                if s.startswith("DOWN")]
        bad = [s for s in self.sessions if a <= s["accept"] <= b and (
            s["retries"] > 0 or (s["s"] == "h1" and s["ts"].startswith("SC")))]
        lines = load_access(self.run.prefix("h1") / "logs" / "access.log")
        draining = [f for f in lines if f[0] == "198.18.1.1" and f[4] == "503"]
        detail = []
        if not down:
            detail.append("HAProxy did not see h1 DOWN within %g s of its "
                          "QUIT" % DRAIN)
        if bad:
            detail.append("%d refused connects or retries, e.g. %s"
                          % (len(bad), bad[0]["line"]))
        if not draining:
            detail.append("no health check answered 503 in h1's access log")
        self.record("h1 DOWN before its listeners close (step 4)",
                    not detail, "; ".join(detail),
                    needs=("drain_delay", "health"))

    # -- keep-alive through reloads ---------------------------------------

    def keepalive_reloads(self):
        a, b = self.t("s1_start"), self.t("s1_end")
        reloads = self.ev["s1_end"]["reloads"]
        by_client = defaultdict(list)
        for r in self.requests:
            if r.kind == "keepalive":
                by_client[r.client].append(r)
        on_h1 = []
        problems = []
        for c, reqs in sorted(by_client.items()):
            before = [r for r in reqs if r.start < a and r.ok]
            if not before or before[-1].host != "h1":
                continue
            port = before[-1].port
            on_h1.append(c)
            during = [r for r in reqs if a <= r.start <= b]
            moved = [r for r in during if r.port != port or not r.ok
                     or r.host != "h1"]
            if moved:
                problems.append("client %d left its connection (port %d): "
                                "%r" % (c, port, moved[0]))
                continue
            last = 0
            for r in during:
                v = int(r.config.lstrip("v") or 0)
                if v < last:
                    problems.append("client %d: X-Config went back: %r"
                                    % (c, r))
                    break
                last = v
            for i, rl in enumerate(reloads):
                nxt = reloads[i + 1]["start"] if i + 1 < len(reloads) else b
                after = [r for r in during
                         if rl["end"] + SLACK <= r.start < nxt]
                want = "v%d" % rl["version"]
                wrong = [r for r in after if r.config != want]
                if not after or wrong:
                    problems.append("client %d: after reload to %s: %s" % (
                        c, want, wrong[0] if wrong else "no request"))
                    break
        if not on_h1:
            problems.append("no keep-alive client was on h1 at step 1")
        self.record("keep-alive clients on h1 (%d) keep their connections "
                    "through its reloads, X-Config follows" % len(on_h1),
                    not problems, "; ".join(problems[:3]),
                    needs=("handover",))

    # -- each host serves before and after its event ------------------------

    def serves(self):
        windows = (
            ("h1", "reloads", self.t("s1_start"), self.t("s1_end")),
            ("h2", "upgrade", self.t("s2_start"), self.t("s2_end")),
            ("h3", "kill", self.t("s3_kill"), self.t("s3_end")),
            ("h1", "drain", self.t("s4_start"), self.t("s4_end")),
        )
        problems = []
        for host, what, a, b in windows:
            pre = [r for r in self.requests
                   if r.ok and r.host == host and a - 2 <= r.end <= a]
            post = [r for r in self.requests
                    if r.ok and r.host == host and b <= r.start <= b + 2.5]
            if not pre or not post:
                problems.append("%s %s: %d responses in the 2 s before, %d "
                                "in the 2.5 s after" % (host, what, len(pre),
                                                        len(post)))
        self.record("each host serves before and after its event",
                    not problems, "; ".join(problems))

    # -- access logs -----------------------------------------------------

    def access_logs(self):
        ports = {r.port for r in self.requests}
        problems = []
        for n, host in enumerate(HOSTS, 1):
            lb = "198.18.%d.1" % n
            lines = load_access(self.run.prefix(host) / "logs" / "access.log")
            clients = [f for f in lines if f[0] == CLIENT_ADDR]
            checks = [f for f in lines if f[0] == lb]
            odd = [f for f in lines if f[0] not in (CLIENT_ADDR, lb)
                   or f[1] != lb]
            unknown = [f for f in clients if int(f[2]) not in ports]
            if not clients or not checks or odd or unknown:
                problems.append(
                    "%s: %d lines from %s, %d health checks from %s, %d "
                    "others (%s), %d client ports no client used (%s)" % (
                        host, len(clients), CLIENT_ADDR, len(checks), lb,
                        len(odd), " ".join(odd[0]) if odd else "",
                        len(unknown), " ".join(unknown[0]) if unknown
                        else ""))
        self.record("access logs show $remote_addr %s and the balancer's "
                    "address for health checks (v2 LOCAL)" % CLIENT_ADDR,
                    not problems, "; ".join(problems))

    # -- commands and TLS --------------------------------------------------

    def commands(self):
        reloads = self.ev["s1_end"]["reloads"]
        bad = [r for r in reloads if r["rc"] != 0]
        self.record("h1: 5 x `eddy -s reload` exit 0", not bad,
                    "; ".join("v%d: exit %d: %s" % (r["version"], r["rc"],
                                                    r["out"]) for r in bad))
        st = self.ev["s4_stopped"]
        self.record("h1: `eddy -s quit` exits 0", st["rc"] == 0,
                    "exit %d: %s" % (st["rc"], st["out"]))

    def resumption(self):
        last = {}
        cross = defaultdict(int)
        total = defaultdict(int)
        for r in self.requests:
            if not r.kind.startswith("tls") or not r.ok:
                continue
            total[(r.host, r.kind)] += 1
            prev = last.get(r.client)
            if r.reused == "1" and prev is not None and prev != r.host:
                cross[(r.host, r.kind)] += 1
            last[r.client] = r.host
        missing = ["%s %s" % k for k in
                   ((h, v) for h in HOSTS for v in ("tls12", "tls13"))
                   if not cross[k]]
        self.record("HTTPS sessions made on one host resume on another "
                    "(each host, TLS 1.2 and 1.3)", not missing,
                    "none on %s" % ", ".join(missing),
                    needs=("session_ticket_key_file",))
        self.tls = (sum(cross.values()), sum(total.values()))

    def namespaces(self, left):
        self.record("after teardown `ip netns list` shows none of the run's "
                    "namespaces", not left, " ".join(left))


def report(run, left, elapsed, say=print):
    c = Checks(run)
    c.commands()
    c.failures()
    # A failed check shows as DOWN up to inter x fall later: 1.5 s more.
    c.never_down("h1", c.t("s1_start"), c.t("s1_end") + 1.5, "its reloads")
    c.never_down("h2", c.t("s2_start"), c.t("s2_end") + 1.5, "its upgrade")
    c.drain_order()
    c.keepalive_reloads()
    c.serves()
    c.access_logs()
    c.resumption()
    c.namespaces(left)

    reqs = c.requests
    failed = [r for r in reqs if not r.ok]
    kinds = defaultdict(lambda: [0, 0])
    for r in reqs:
        kinds[r.kind][0] += 1
        kinds[r.kind][1] += not r.ok
    say("fleet: run %s, %.0f s: %d requests (%s), %d failed (%d allowed), "
          "%d HAProxy sessions; TLS resumed across hosts %d of %d" % (
              run.id, elapsed, len(reqs), ", ".join(
                  "%s %d/%d failed" % (k, v[1], v[0])
                  for k, v in sorted(kinds.items())),
              len(failed), len(c.allowed), len(c.sessions), c.tls[0],
              c.tls[1]))
    say("fleet: events: " + ", ".join(
        "%s %s" % (k, fmt_t(v["t"])) for k, v in
        sorted(run.events.items(), key=lambda kv: kv[1]["t"])))
    changes = []
    prev = {}
    for t, st in run.stats:
        for h in HOSTS:
            if st.get(h) != prev.get(h):
                changes.append("%s %s %s" % (fmt_t(t), h, st.get(h)))
        prev = st
    say("fleet: HAProxy states: " + ", ".join(changes))
    ok = True
    for verdict, name, detail in c.results:
        line = "fleet: %-4s %s" % (verdict, name)
        if verdict != "PASS" and detail:
            line += "\n        " + detail
        say(line)
        ok = ok and verdict != "FAIL"
    say("fleet: %s" % ("passed" if ok else "FAILED"))
    return ok
