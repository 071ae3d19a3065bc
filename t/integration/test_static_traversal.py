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
