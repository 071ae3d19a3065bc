"""Nothing outside the root (or alias) is ever served, whatever the
encoding of the path: "..", %2e%2e, %2f, backslashes, NUL, overlong UTF-8,
double encoding, absolute-form targets; symlinks per policy (http.md
"Static files", config.md `static.symlinks`)."""

import os

import pytest

from conftest import split_response

CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        static: {}
      /img:
        static: {alias: {prefix}/img}
      /pub/:
        static: {alias: {prefix}/pub/}
      /deny/:
        static: {symlinks: deny}
      /owner/:
        static: {symlinks: owner}
      /follow/:
        static: {symlinks: follow}
"""

SECRET = b"TOP-SECRET-" + os.urandom(8).hex().encode()


@pytest.fixture
def srv(eddy):
    e = eddy(CONFIG, start=False)
    e.write_file("secret.txt", SECRET)
    e.write_file("html/index.html", "index\n")
    e.write_file("html/a..b.txt", "dots inside a name\n")
    e.write_file("img/logo.txt", "logo\n")
    e.write_file("img-private/secret.txt", SECRET)
    e.write_file("pub/p.txt", "pub\n")
    for d in ("deny", "owner", "follow"):
        e.write_file("html/%s/real.txt" % d, "real\n")
        os.symlink(str(e.prefix / "secret.txt"),
                   str(e.prefix / ("html/%s/out.txt" % d)))
        os.symlink("real.txt", str(e.prefix / ("html/%s/in.txt" % d)))
        os.symlink(str(e.prefix), str(e.prefix / ("html/%s/up" % d)))
    return e.start()


def raw_get(e, target):
    data = b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n" \
           b"Connection: close\r\n\r\n"
    raw, closed = e.raw_ex(data, timeout=5)
    assert raw, "no answer to %r" % target
    return raw


TARGETS = [
    b"/../secret.txt",
    b"/../../../../../../etc/passwd",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/.%2e/secret.txt",
    b"/%2e./secret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/..%2fsecret.txt",
    b"/..%2Fsecret.txt",
    b"/%2f..%2fsecret.txt",
    b"/a/..%2f..%2fsecret.txt",
    b"/index.html/../../secret.txt",
    b"/..\\secret.txt",
    b"/\\..\\secret.txt",
    b"/..%5csecret.txt",
    b"/%5c..%5csecret.txt",
    b"/img/..\\..\\secret.txt",
    b"/secret.txt%00.html",
    b"/%00/../secret.txt",
    b"/index.html%00",
    b"/%c0%ae%c0%ae/secret.txt",
    b"/%c0%ae%c0%ae%c0%afsecret.txt",
    b"/%e0%80%ae%e0%80%ae/secret.txt",
    b"/%c0%2e%c0%2e/secret.txt",
    b"/%c1%9c..%c1%9csecret.txt",
    b"/%252e%252e/secret.txt",
    b"/%252e%252e%252fsecret.txt",
    b"/..;/secret.txt",
    b"/.../secret.txt",
    b"//../secret.txt",
    b"/./../secret.txt",
    b"/img/../../secret.txt",
    b"/img..%2fsecret.txt",
    b"/img-private/secret.txt",
    b"/img%2d%70rivate/secret.txt",
    b"/pub/../../secret.txt",
    b"/pub/%2e%2e/%2e%2e/secret.txt",
    b"/pub/..%2f..%2fsecret.txt",
    b"http://localhost/../secret.txt",
    b"http://localhost/%2e%2e/secret.txt",
    b"/deny/out.txt",
    b"/deny/up/secret.txt",
]


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.decode())
def test_traversal_never_serves_outside(srv, target):
    raw = raw_get(srv, target)
    status, h, body = split_response(raw)
    assert status in (400, 403, 404), (target, status)
    assert SECRET not in raw
    assert b"root:" not in body
    # The server is still answering.
    status, h, body = split_response(raw_get(srv, b"/index.html"))
    assert status == 200 and body == b"index\n"


def test_traversal_status_codes(srv):
    """Climbing above the root is a malformed request; a backslash, NUL
    or a refused link are refusals; names that only look odd are just
    missing."""
    def status(t):
        return split_response(raw_get(srv, t))[0]

    assert status(b"/../secret.txt") == 400
    assert status(b"/%2e%2e/secret.txt") == 400
    assert status(b"/a/..%2f..%2fsecret.txt") == 400
    assert status(b"/secret.txt%00") == 400
    assert status(b"/..\\secret.txt") == 400
    assert status(b"/%c0%ae%c0%ae/secret.txt") == 404
    assert status(b"/img-private/secret.txt") == 404
    assert status(b"/deny/out.txt") == 403
    assert status(b"/deny/up/secret.txt") == 403


def test_names_with_dots_are_served(srv):
    status, h, body = split_response(raw_get(srv, b"/a..b.txt"))
    assert status == 200 and body == b"dots inside a name\n"
    status, h, body = split_response(raw_get(srv, b"/img/logo.txt"))
    assert status == 200 and body == b"logo\n"
    status, h, body = split_response(raw_get(srv, b"/img/../index.html"))
    assert status == 200 and body == b"index\n"


def test_symlink_policies(srv):
    def get(t):
        return split_response(raw_get(srv, t))

    # follow: the admin's links are trusted, wherever they point.
    assert get(b"/follow/in.txt")[2] == b"real\n"
    assert get(b"/follow/out.txt")[2] == SECRET
    assert get(b"/follow/up/secret.txt")[2] == SECRET
    # deny: no link at all, final or in the middle.
    assert get(b"/deny/real.txt")[2] == b"real\n"
    assert get(b"/deny/in.txt")[0] == 403
    assert get(b"/deny/out.txt")[0] == 403
    assert get(b"/deny/up/secret.txt")[0] == 403
    # owner: links whose owner owns the target (all ours here).
    assert get(b"/owner/in.txt")[2] == b"real\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_symlink_owner_mismatch(srv):
    os.lchown(str(srv.prefix / "html/owner/out.txt"), 4242, 4242)
    status, h, body = split_response(raw_get(srv, b"/owner/out.txt"))
    assert status == 403 and SECRET not in body
    os.lchown(str(srv.prefix / "html/owner/up"), 4242, 4242)
    status, h, body = split_response(raw_get(srv,
                                             b"/owner/up/secret.txt"))
    assert status == 403 and SECRET not in body


# -- alias and the location's spelling ("off-by-slash")
#
# app/static/ is the alias directory; next to it lie app/settings.py, a
# directory app/static-private/ and app/staticfoo/ whose names continue
# the alias's last name, and the secret two levels up. Every location
# below maps to app/static in one spelling or another; none may give out
# a byte of the secret nor a listing of app/.

ALIAS_CONFIG = r"""
workers: 1
error_log: logs/error.log
servers:
  - listen: 127.0.0.1:{port}
    root: html
    locations:
      /:
        static: {}
      /static:
        static: {alias: {prefix}/app/static/, autoindex: true}
      /nos:
        static: {alias: {prefix}/app/static, autoindex: true}
      /sl/:
        static: {alias: {prefix}/app/static/, autoindex: true}
      /slnos/:
        static: {alias: {prefix}/app/static, autoindex: true}
      ^~ /nr:
        static: {alias: {prefix}/app/static/, autoindex: true}
      = /ex:
        static: {alias: {prefix}/app/static/, autoindex: true}
      /tf:
        static: {alias: {prefix}/app/static/, autoindex: true,
                 try_files: [$uri, $uri/, =404]}
      /tfd:
        static: {alias: {prefix}/app/static/, autoindex: true,
                 try_files: ["$uri/", "$uri", =404]}
      /own:
        static: {alias: {prefix}/app/static/, symlinks: owner,
                 autoindex: true}
      /deny:
        static: {alias: {prefix}/app/static/, symlinks: deny,
                 autoindex: true}
      /rs:
        root: {prefix}/rootdir
        static: {autoindex: true}
      '~ ^/re/':
        static: {root: {prefix}/rootdir, autoindex: true}
"""

# Names and bytes that only exist outside app/static/.
OUTSIDE = [b"settings.py", b"static-private", b"staticfoo", b"SETTINGS-",
           b"PRIVATE-"]


@pytest.fixture
def asrv(eddy):
    e = eddy(ALIAS_CONFIG, start=False)
    e.write_file("secret.txt", SECRET)
    e.write_file("html/index.html", "index\n")
    e.write_file("app/static/app.css", "body{}\n")
    e.write_file("app/static/a..b.css", "dots\n")
    e.write_file("app/static/sub/s.js", "sub\n")
    e.write_file("app/static/sub/index.html", "sub index\n")
    e.write_file("app/settings.py", b"SETTINGS-" + SECRET)
    e.write_file("app/static-private/key.pem", b"PRIVATE-" + SECRET)
    e.write_file("app/staticfoo/key.pem", b"PRIVATE-" + SECRET)
    for d in ("rs", "re"):
        e.write_file("rootdir/%s/app.css" % d, "body{}\n")
        e.write_file("rootdir/%s/a..b.css" % d, "dots\n")
        e.write_file("rootdir/%s/sub/s.js" % d, "sub\n")
        e.write_file("rootdir/%s/sub/index.html" % d, "sub index\n")
    e.write_file("rootdir/settings.py", b"SETTINGS-" + SECRET)
    return e.start()


def alias_attacks():
    """Targets that name something outside app/static/ through every
    location above, in many spellings."""
    tails = [
        b"..", b"../", b"../settings.py", b"..%2fsettings.py",
        b"..%2Fsettings.py", b"%2e%2e/settings.py", b"%2E./settings.py",
        b".%2e/settings.py", b"%2e%2e%2fsettings.py", b"..//settings.py",
        b".././settings.py", b"../static/../settings.py",
        b"../../secret.txt", b"..%2f..%2fsecret.txt", b"../static-private/",
        b"../static-private/key.pem", b"-private/key.pem",
        b"%2dprivate/key.pem", b"-private/", b"foo/key.pem", b"foo/",
        b".", b"./", b"...", b".../settings.py", b"..\\settings.py",
        b"..%5csettings.py", b"..%00/settings.py", b"%00../settings.py",
        b"../settings.py%00", b"..;/settings.py",
        b"/../settings.py", b"/%2e%2e/settings.py", b"/..%2fsettings.py",
        b"//../settings.py", b"/sub/../../settings.py",
        b"/sub/%2e%2e/%2e%2e/settings.py",
    ]
    out = []
    for loc in (b"/static", b"/nos", b"/sl", b"/slnos", b"/nr", b"/ex",
                b"/tf", b"/tfd", b"/own", b"/deny", b"/rs", b"/re"):
        for t in tails:
            out.append(loc + t)
    for loc in (b"/sl/", b"/slnos/"):
        for t in (b"..", b"../", b"../settings.py", b"%2e%2e/settings.py",
                  b"..%2fsettings.py", b"/../settings.py"):
            out.append(loc + t)
    out += [b"/static..", b"/static../", b"/static../settings.py",
            b"/static%2e%2e/settings.py", b"/static.%2e/settings.py",
            b"/static..%2fsettings.py", b"/static..%2f",
            b"http://localhost/static../settings.py",
            b"/Static../settings.py"]
    return out


def test_regress_alias_off_by_slash(asrv):
    """The reported case: a prefix location without a trailing slash and
    an alias with one; the rest of the URI is never joined to the alias
    in the middle of a name."""
    for target in (b"/static../settings.py", b"/static../",
                   b"/static..", b"/static%2e%2e/settings.py",
                   b"/static..%2fsettings.py", b"/static-private/key.pem",
                   b"/staticfoo/key.pem", b"/tf../settings.py",
                   b"/nr../settings.py"):
        raw = raw_get(asrv, target)
        status, h, body = split_response(raw)
        assert status == 404, (target, status)
        for s in OUTSIDE:
            assert s not in raw, (target, s)


def test_regress_alias_spellings_never_leave(asrv):
    for target in alias_attacks():
        raw = raw_get(asrv, target)
        status, h, body = split_response(raw)
        # Some spellings normalise to "/" (location "/", html/index.html).
        assert status in (400, 403, 404) or body == b"index\n", \
            (target, status)
        assert SECRET not in raw, target
        for s in OUTSIDE:
            assert s not in body, (target, s)


def test_alias_legitimate_files(asrv):
    """What lies in the alias directory is still served through every
    spelling of the location."""
    def get(t):
        return split_response(raw_get(asrv, t))

    for loc in (b"/static", b"/nos", b"/sl", b"/slnos", b"/nr", b"/tf",
                b"/tfd", b"/own", b"/deny", b"/rs", b"/re"):
        status, h, body = get(loc + b"/app.css")
        assert status == 200 and body == b"body{}\n", loc
        status, h, body = get(loc + b"/a..b.css")
        assert status == 200 and body == b"dots\n", loc
        status, h, body = get(loc + b"/sub/s.js")
        assert status == 200 and body == b"sub\n", loc
        status, h, body = get(loc + b"/sub/")
        assert status == 200 and body == b"sub index\n", loc
        status, h, body = get(loc + b"/sub/../app.css")
        assert status == 200 and body == b"body{}\n", loc
        status, h, body = get(loc + b"/%61pp.css")
        assert status == 200 and body == b"body{}\n", loc
        status, h, body = get(loc + b"//sub//s.js")
        assert status == 200 and body == b"sub\n", loc
        # The listing of the alias itself, and only of it.
        status, h, body = get(loc + b"/")
        assert status == 200 and b"app.css" in body, loc
        for s in OUTSIDE:
            assert s not in body, (loc, s)
    # Without the slash: the directory redirect, then the listing.
    for loc in (b"/static", b"/nos", b"/nr", b"/rs"):
        status, h, body = get(loc)
        assert status == 301, loc
        assert h["location"] == [(loc + b"/").decode()], loc
    status, h, body = get(b"/ex")
    assert status == 301
    # The exact location: the alias is the answer to that one URI.
    status, h, body = get(b"/ex/")
    assert status == 404
    status, h, body = get(b"/ex/app.css")
    assert status == 404
