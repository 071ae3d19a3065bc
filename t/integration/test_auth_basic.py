"""The auth_basic module (modules-2.md): user files written by Debian's
htpasswd (apache2-utils: bcrypt, {SHA}, apr1) and mkpasswd (whois:
SHA-512-crypt, SHA-256-crypt), each hash kind accepting its password and
refusing others with 401 and the realm; refused forms as -t errors at
their line naming the user, never the hash; the error log naming the
user and never the password; the per-worker cache of verified pairs;
$remote_user in the access log; `off`, the order of checks and a custom
401 page keeping the challenge."""

import base64
import re
import shutil
import subprocess
import time

import pytest

from conftest import run_eddy, wait_for

CHALLENGE = 'Basic realm="Staff only", charset="UTF-8"'


def tool(name, package):
    path = shutil.which(name)
    assert path, ("%s is needed (Debian package %s; ./configure "
                  "--install-deps)" % (name, package))
    return path


def htpasswd(*args):
    """One `user:hash` line from htpasswd -n (no file written)."""
    out = subprocess.run([tool("htpasswd", "apache2-utils"), "-n", "-b"]
                         + list(args), check=True, capture_output=True,
                         text=True).stdout
    return out.strip()


def mkpasswd(method, password):
    out = subprocess.run([tool("mkpasswd", "whois"), "-m", method,
                          password], check=True, capture_output=True,
                         text=True).stdout
    return out.strip()


def auth(user, password):
    token = base64.b64encode(("%s:%s" % (user, password)).encode())
    return {"Authorization": "Basic " + token.decode()}


# Users of every kind; each password is unique, so one user's password
# is wrong for all the others.
USERS = {
    "alice": "bcrypt-pw-1",     # htpasswd -B (bcrypt, $2y$)
    "bob": "sha1-pw-2",         # htpasswd -s ({SHA})
    "carol": "apr1-pw-3",       # htpasswd -m ($apr1$)
    "dave": "sha512-pw-4",      # mkpasswd -m sha-512 ($6$)
    "erin": "sha256-pw-5",      # mkpasswd -m sha-256 ($5$)
    "frank": "bcrypt-2b-pw-6",  # bcrypt rewritten as $2b$
    "grace": "bcrypt-2a-pw-7",  # bcrypt rewritten as $2a$
}


def user_file():
    lines = [
        "# made by htpasswd and mkpasswd",
        htpasswd("-B", "-C", "5", "alice", USERS["alice"]),
        htpasswd("-s", "bob", USERS["bob"]),
        htpasswd("-m", "carol", USERS["carol"]),
        "dave:" + mkpasswd("sha-512", USERS["dave"]),
        "erin:" + mkpasswd("sha-256", USERS["erin"]),
        "",
    ]
    # The same algorithm under the other bcrypt prefixes (an ASCII
    # password hashes alike under all three).
    for name, prefix in (("frank", "$2b$"), ("grace", "$2a$")):
        line = htpasswd("-B", "-C", "5", name, USERS[name])
        user, h = line.split(":", 1)
        assert h.startswith("$2y$")
        lines.append("%s:%s%s" % (user, prefix, h[4:]))
    assert lines[1].startswith("alice:$2y$05$")
    assert lines[2].startswith("bob:{SHA}")
    assert lines[3].startswith("carol:$apr1$")
    assert lines[4].startswith("dave:$6$")
    assert lines[5].startswith("erin:$5$")
    return "\n".join(lines) + "\n"


CONFIG = """
workers: 1
error_log: logs/error.log
access_log: logs/access.log
servers:
  - listen: 127.0.0.1:{port}
    auth_basic: {realm: "Staff only", user_file: conf/htpasswd}
    locations:
      /:
        return: {status: 200, body: "in $remote_user\\n"}
      /open/:
        auth_basic: off
        return: {status: 200, body: "open\\n"}
      /denied/:
        access: [{deny: all}]
        return: {status: 200, body: "never\\n"}
      /page/:
        error_pages: {401: /401.html}
        return: {status: 200, body: "page\\n"}
      = /401.html:
        auth_basic: off
        return: {status: 200, body: "custom 401 page\\n"}
      /page2/:
        error_pages: {401: /guarded.html}
        return: {status: 200, body: "page2\\n"}
      = /guarded.html:
        return: {status: 200, body: "guarded page\\n"}
"""


@pytest.fixture(scope="module")
def users_text():
    return user_file()


@pytest.fixture
def srv(eddy, users_text):
    e = eddy(CONFIG, start=False)
    e.write_file("conf/htpasswd", users_text)
    return e.start()


def access_lines(e, n):
    def enough():
        ls = e.log_text("logs/access.log").splitlines()
        return ls if len(ls) >= n else None
    return wait_for(enough, timeout=5)


def test_each_kind_accepts_its_password_only(srv):
    for user, pw in USERS.items():
        r = srv.get("/x", headers=auth(user, pw))
        assert r.status == 200, (user, r)
        assert r.body == b"in %s\n" % user.encode()
        for other, opw in USERS.items():
            if other == user:
                continue
            r = srv.get("/x", headers=auth(user, opw))
            assert r.status == 401, (user, other, r)
            assert r.header("WWW-Authenticate") == CHALLENGE
        r = srv.get("/x", headers=auth(user, pw + "x"))
        assert r.status == 401
        assert r.header("WWW-Authenticate") == CHALLENGE


def test_absent_and_malformed_credentials(srv):
    r = srv.get("/x")
    assert r.status == 401
    assert r.headers.get_all("WWW-Authenticate") == [CHALLENGE]
    # Absent credentials are a browser's first request: no log line.
    assert "[error]" not in srv.error_log
    bad = [
        "Bearer abc",
        "Basic",
        "Basic !!!!",
        "Basic " + base64.b64encode(b"alice").decode(),   # no ':'
        "Basic " + base64.b64encode(b"alice:bcrypt-pw-1").decode() + " x",
        "Basic " + base64.b64encode(b"alice:bcrypt-pw-1\0x").decode(),
    ]
    for value in bad:
        r = srv.get("/x", headers={"Authorization": value})
        assert r.status == 401, value
        assert r.header("WWW-Authenticate") == CHALLENGE
    log = srv.error_log
    assert log.count("malformed Basic credentials") == 5, log
    assert "no Basic credentials" in log
    # Two Authorization fields: refused, not one of them picked.
    data = srv.raw(b"GET /x HTTP/1.1\r\nHost: t\r\n"
                   b"Authorization: Basic YWxpY2U6YmNyeXB0LXB3LTE=\r\n"
                   b"Authorization: Basic YWxpY2U6YmNyeXB0LXB3LTE=\r\n"
                   b"Connection: close\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 401 ")
    ok = srv.raw(b"GET /x HTTP/1.1\r\nHost: t\r\n"
                 b"authorization:   bAsIc   YWxpY2U6YmNyeXB0LXB3LTE=  \r\n"
                 b"Connection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 "), ok


def test_log_names_the_user_never_the_password(srv):
    assert srv.get("/x", headers=auth("alice", "Wr0ng-Secret")).status \
        == 401
    assert srv.get("/x", headers=auth("eve", "Eve-Secret")).status == 401
    long_name = '"' + "m" * 100
    assert srv.get("/x", headers=auth(long_name, "Other-Secret")).status \
        == 401
    log = srv.error_log
    assert re.search(r'\[error\] .*user "alice": password mismatch, '
                     r'client: 127\.0\.0\.1, .*request: "GET /x HTTP/1\.1"',
                     log), log
    assert 'user "eve": not found in "conf/htpasswd"' in log
    # Escaped, cut at 64 bytes.
    m = re.search(r'user "(\\x22m+\.\.\.)": not found', log)
    assert m and len(m.group(1)) == 64, log
    for secret in ("Wr0ng-Secret", "Eve-Secret", "Other-Secret",
                   "bcrypt-pw-1"):
        assert secret not in log
        assert secret not in srv.log_text("logs/access.log")


def test_remote_user_in_combined_log(srv):
    srv.get("/a", headers=auth("carol", USERS["carol"]))
    srv.get("/b")
    srv.get("/open/c", headers=auth("carol", "wrong"))
    lines = access_lines(srv, 3)
    assert re.match(r'^127\.0\.0\.1 - carol \[[^]]+\] "GET /a HTTP/1\.1" '
                    r'200 ', lines[0]), lines
    assert re.match(r'^127\.0\.0\.1 - - \[[^]]+\] "GET /b HTTP/1\.1" 401 ',
                    lines[1]), lines
    # Not verified (auth_basic off): no user, even with credentials.
    assert re.match(r'^127\.0\.0\.1 - - \[[^]]+\] "GET /open/c ', lines[2])


def test_off_order_and_custom_page(srv):
    r = srv.get("/open/x")
    assert r.status == 200 and r.body == b"open\n"
    assert r.header("WWW-Authenticate") is None
    # access refuses first: 403, no challenge.
    r = srv.get("/denied/x")
    assert r.status == 403
    assert r.header("WWW-Authenticate") is None
    # A custom 401 page keeps the challenge and the status.
    r = srv.get("/page/x")
    assert r.status == 401
    assert r.body == b"custom 401 page\n"
    assert r.header("WWW-Authenticate") == CHALLENGE
    assert srv.get("/page/x", headers=auth("bob", USERS["bob"])).body \
        == b"page\n"
    # A page that asks for credentials itself is not shown: the refusal
    # stands, with one challenge.
    r = srv.get("/page2/x")
    assert r.status == 401 and b"guarded" not in r.body
    assert r.headers.get_all("WWW-Authenticate") == [CHALLENGE]


def test_limit_req_runs_before_the_hashing(eddy, users_text):
    e = eddy("""
        workers: 1
        error_log: logs/error.log
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                limit_req: {rate: 1r/m, burst: 0}
                auth_basic: {realm: "Staff only", user_file: conf/htpasswd}
                return: {status: 200, body: "in\\n"}
        """, start=False)
    e.write_file("conf/htpasswd", users_text)
    e.start()
    assert e.get("/", headers=auth("eve", "x")).status == 401
    assert e.get("/", headers=auth("eve", "x")).status == 429
    assert e.error_log.count('user "eve": not found') == 1


def timed(e, headers):
    t = time.monotonic()
    r = e.get("/x", headers=headers)
    return r.status, time.monotonic() - t


def test_cache_of_verified_pairs(eddy):
    # bcrypt cost 12: ~0.2 s or more per verification here.
    line = htpasswd("-B", "-C", "12", "slow", "slow-pw")
    e = eddy(CONFIG, start=False)
    e.write_file("conf/htpasswd", line + "\n")
    e.start()
    status, first = timed(e, auth("slow", "slow-pw"))
    assert status == 200
    assert first > 0.05, first
    hits = [timed(e, auth("slow", "slow-pw")) for _ in range(3)]
    assert all(s == 200 for s, _ in hits)
    assert max(t for _, t in hits) < first / 4, (first, hits)
    # Failures are not remembered: each one pays the hash again.
    fails = [timed(e, auth("slow", "bad-pw")) for _ in range(2)]
    assert all(s == 401 for s, _ in fails)
    assert min(t for _, t in fails) > first / 2, (first, fails)
    # An unknown name costs a verification of the same kind.
    status, unknown = timed(e, auth("nobody", "slow-pw"))
    assert status == 401
    assert unknown > first / 2, (first, unknown)


def write_conf(prefix, users, extra=""):
    (prefix / "conf" / "htpasswd").write_text(users)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text("""servers:
  - listen: 127.0.0.1:1
    locations:
      /:
        auth_basic: {realm: "Staff only", user_file: conf/htpasswd%s}
        return: 204
""" % extra)
    return run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)


@pytest.mark.parametrize("line,message", [
    ("bob:Sup3rPlain", "plain-text password refused"),
    ("bob:{PLAIN}Sup3rPlain", "plain-text password refused"),
    ("bob:ab01FDEsd9.3s", "DES-crypt hash refused"),
    ("bob:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0", r"MD5-crypt \(\$1\$\) hash "
     "refused"),
    ("bob:$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC."
     "5i5rd.RhAtQ7", "unsupported hash type"),
    ("bob:$2y$05$tooShort", "malformed bcrypt hash"),
    ("bob:", "no password hash"),
])
def test_refused_lines_are_errors_naming_the_user(prefix, line, message):
    users = htpasswd("-B", "-C", "4", "alice", "a") + "\n# c\n" + line + "\n"
    rc, out, err = write_conf(prefix, users)
    assert rc == 1, err
    assert re.search(r'^conf/htpasswd:3: user "bob": ' + message, err,
                     re.M), err
    if "plain" in message:
        # modules-2.md's words exactly.
        assert ('\nconf/htpasswd:3: user "bob": plain-text password '
                'refused\n') in "\n" + err
    secret = line.split(":", 1)[1]
    if secret:
        assert secret not in err and secret not in out


def test_duplicate_and_missing_colon(prefix):
    users = (htpasswd("-B", "-C", "4", "alice", "a") + "\n"
             + "JustAPassword\n"
             + htpasswd("-s", "alice", "b") + "\n")
    rc, out, err = write_conf(prefix, users)
    assert rc == 1
    assert 'conf/htpasswd:2: expected "user:hash"' in err
    assert "JustAPassword" not in err
    assert ('conf/htpasswd:3: user "alice": duplicate user (also on '
            'line 1)') in err
    assert "{SHA}" not in err.replace("{SHA} is unsalted", "")


def test_sha_is_logged_as_weak(prefix):
    rc, out, err = write_conf(prefix, htpasswd("-s", "bob", "b") + "\n")
    assert rc == 0, err
    assert ('conf/htpasswd:1: user "bob": {SHA} is unsalted and weak'
            in err), err


@pytest.mark.parametrize("block,needle,message", [
    ('{realm: "a\\"b", user_file: conf/htpasswd}', '"a', "realm may not"),
    ('{realm: "a\\\\b", user_file: conf/htpasswd}', '"a', "realm may not"),
    ('{realm: "a\\tb", user_file: conf/htpasswd}', '"a', "realm may not"),
    ('{user_file: conf/htpasswd}', "{user", 'expected "realm"'),
    ('{realm: x}', "{realm", 'expected "user_file"'),
    ('{realm: x, user_file: conf/nothere}', "conf/nothere",
     'cannot read user_file'),
    ('{realm: x, user_fle: conf/htpasswd}', "user_fle",
     'did you mean "user_file"'),
    ('on', "on", "expected off or a mapping"),
    ('"Staff only"', '"Staff', "nginx's auth_basic string is realm"),
])
def test_config_errors(prefix, block, needle, message):
    (prefix / "conf" / "htpasswd").write_text(
        htpasswd("-B", "-C", "4", "alice", "a") + "\n")
    text = """servers:
  - listen: 127.0.0.1:1
    locations:
      /:
        auth_basic: %s
        return: 204
""" % block
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-t"], cwd=prefix)
    assert rc == 1, err
    col = text.splitlines()[4].index(needle) + 1
    assert re.search(r"eddy\.yaml:5:%d: .*%s" % (col, re.escape(message)),
                     err), err


def test_reload_reads_the_file_again(eddy):
    e = eddy(CONFIG, start=False)
    e.write_file("conf/htpasswd", htpasswd("-B", "-C", "4", "u1", "p1")
                 + "\n")
    e.start()
    assert e.get("/x", headers=auth("u1", "p1")).status == 200
    e.write_file("conf/htpasswd", htpasswd("-m", "u2", "p2") + "\n")
    old = set(e.worker_pids())
    e.ctl("-s", "reload")
    e.wait_workers(1, exclude=old)
    wait_for(lambda: e.get("/x", headers=auth("u2", "p2")).status == 200,
             timeout=5)
    assert e.get("/x", headers=auth("u1", "p1")).status == 401
