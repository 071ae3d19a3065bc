"""The cgi block at load (spec fastcgi-cgi.md, cgi): each -t error at
its file:line:col, worded as the spec says, and -T round trips."""

import os

from cgiutil import cgi_root  # noqa: F401
from conftest import check_config_error, run_eddy

HEAD = """\
user: nobody
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /cgi-bin/:
        cgi:
"""


def conf(root, body):
    return HEAD + "          root: %s\n" % root + body


def test_errors(prefix, cgi_root):
    (prefix / "notadir").write_text("x")
    cases = [
        (HEAD + "          root: notadir\n", "notadir",
         r'cgi root "notadir" is not a directory'),
        (HEAD + "          alias: /nonexistent/cgi\n", "/nonexistent/cgi",
         r'cgi alias "/nonexistent/cgi" is not a directory'),
        (conf(cgi_root, "          interpreters: {.py: /usr/bin/pyhton3}\n"),
         "/usr/bin/pyhton3",
         r'interpreter for "\.py" must be an absolute path to an '
         r'executable file: "/usr/bin/pyhton3"$'),
        (conf(cgi_root, "          interpreters:\n"
                        "            .pl: [perl, -T]\n"), "perl",
         r'interpreter for "\.pl" must be an absolute path to an '
         r'executable file: "perl"$'),
        (conf(cgi_root, "          interpreters: {py: /usr/bin/python3}\n"),
         "py:", r"expected an extension like \.py$"),
        (conf(cgi_root, "          env:\n            PATH_INFO: /x\n"),
         "PATH_INFO",
         r'"PATH_INFO" is an RFC 3875 variable; env cannot set it$'),
        (conf(cgi_root, "          env:\n            HTTP_PROXY: x\n"),
         "HTTP_PROXY", r'"HTTP_PROXY" is an RFC 3875 variable'),
        (conf(cgi_root, "          env: {BAD NAME: x}\n"), "BAD NAME",
         r'invalid env name "BAD NAME"'),
        (conf(cgi_root, "          env: {X: $nosuchvar}\n"), "$nosuchvar",
         r'unknown variable'),
        (conf(cgi_root, "          limits: {cpu: 30s, memroy: 512m}\n"),
         "memroy",
         r'unknown key "memroy" in limits; did you mean "memory"\?$'),
        # (-1 within its line: the cgi root, mkdtemp's "eddy-cgi-" and
        # a random name, holds "-1" once in 37 runs; "0" may be in it
        # anywhere.)
        (conf(cgi_root, "          max_processes: -1\n"),
         ("max_processes: -1", "-1"), r"1"),
        (conf(cgi_root, "          max_processes: 1025\n"), "1025", r"1024"),
        (conf(cgi_root, "          symlinks: sometimes\n"), "sometimes",
         r"follow"),
        (conf(cgi_root, "          timeot: 5s\n"), "timeot",
         r'did you mean "timeout"'),
    ]
    for text, needle, pattern in cases:
        check_config_error(prefix, text, needle, pattern)


def test_needs_a_root_and_one_handler(prefix, cgi_root):
    text = ("user: nobody\nservers:\n  - listen: 127.0.0.1:{port}\n"
            "    locations:\n      /cgi-bin/:\n        cgi: {index: []}\n")
    check_config_error(prefix, text, "{index", r"cgi needs a root or an "
                       r"alias$")
    text = conf(cgi_root, "        return: 200\n")
    check_config_error(prefix, text, "cgi:", r"one content handler")
    text = conf(cgi_root, "").replace("/cgi-bin/:", "~ ^/x:").replace(
        "root:", "alias:")
    check_config_error(prefix, text, str(cgi_root), r'"alias" needs a prefix')
    text = conf(cgi_root, "").replace(
        "          root: %s\n" % cgi_root,
        "          root: %s\n          alias: %s\n" % (cgi_root, cgi_root))
    check_config_error(prefix, text, "root:", r'cgi has both "root" and '
                       r'"alias": choose one')


def test_root_workers_refused(prefix, cgi_root):
    """As root without `user`, workers would run scripts as root."""
    assert os.geteuid() == 0
    text = conf(cgi_root, "").replace("user: nobody\n", "")
    check_config_error(prefix, text, "root:",
                       r'cgi cannot run scripts as root; set "user"$')
    text = conf(cgi_root, "").replace("user: nobody\n", "user: root\n")
    check_config_error(prefix, text, "root:",
                       r'cgi cannot run scripts as root; set "user"$')


def test_dump_round_trip(prefix, cgi_root):
    text = conf(cgi_root, """\
          index: [index.cgi, index.py]
          interpreters: {.py: /usr/bin/python3, .pl: [/usr/bin/perl, -T]}
          env: {LANG: C.UTF-8, PATH: /bin, WHO: "$remote_addr"}
          max_processes: 4
          timeout: 10s
          kill_after: 1500ms
          symlinks: follow
          pass_authorization: true
          buffer_size: 16k
          limits: {cpu: 30s, memory: 512m, files: 256, processes: 64,
                   file_size: 64m}
""").replace("{port}", "18999")
    (prefix / "conf").mkdir(exist_ok=True)
    (prefix / "conf/eddy.yaml").write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", prefix / "conf/eddy.yaml",
                             "-T"], cwd=prefix)
    assert rc == 0, err
    for want in ("max_processes: 4", "kill_after: 1500ms", "symlinks: follow",
                 "/usr/bin/perl", "file_size: 64m", "index: [index.cgi, "
                 "index.py]"):
        assert want in out, want
    # The memory estimate counts the script's head, an unknown-length
    # body and stdout's buffer per request.
    assert "per active request, up to: 8 KiB head, 48 KiB cgi buffers" in out
    (prefix / "conf/dumped.yaml").write_text(out)
    rc, again, err = run_eddy(["-p", prefix, "-c",
                               prefix / "conf/dumped.yaml", "-T"], cwd=prefix)
    assert rc == 0, err
    assert again.split("\n", 1)[0] == out.split("\n", 1)[0]
