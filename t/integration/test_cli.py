"""Command line: -v -V -h, -t / -T with good and bad configs, ${env:},
includes, and -s without a running master (process.md, config.md)."""

import os
import re
import subprocess
import time

from conftest import format_config, free_port, position, run_eddy

GOOD = """
workers: 2
shutdown_timeout: 2s
pid_file: logs/eddy.pid
error_log: {path: logs/error.log, level: info}
events: {max_connections: 1024, accept: exclusive, backlog: 128}
servers:
  - listen: 127.0.0.1:{port}
    names: [localhost, "*.example.com"]
    root: html
    locations:
      = /healthz:
        return: {status: 200, body: "ok\\n", content_type: text/plain}
      /:
        return: 204
"""


def write_conf(prefix, text, name="conf/eddy.yaml"):
    """Write the formatted config under prefix; return (path, text)."""
    text = format_config(text, [free_port()], prefix)
    path = prefix / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path, text


def check(prefix, conf, *extra, env=None):
    """eddy -p PREFIX -c CONF -t (or extra flags); (rc, out, err)."""
    args = ["-p", prefix, "-c", conf] + (list(extra) or ["-t"])
    return run_eddy(args, cwd=prefix, env=env)


def error_lines(text):
    return [ln for ln in text.splitlines()
            if re.search(r"\.yaml:\d+:\d+: ", ln)]


def assert_error_at(err, fname, line, cols, *patterns):
    """Some error line names fname:line:col (col one of cols) and matches
    every pattern (regexes, searched in that same line)."""
    if isinstance(cols, int):
        cols = (cols,)
    want = [r"%s:%d:%d: " % (re.escape(fname), line, c) for c in cols]
    for ln in err.splitlines():
        if any(re.search(w, ln) for w in want) and \
                all(re.search(p, ln) for p in patterns):
            return ln
    raise AssertionError("no error line at %s:%d:%s matching %s in:\n%s"
                         % (fname, line, cols, patterns, err))


def assert_failed(rc, out, err):
    assert rc == 1, "rc=%r\nstdout:\n%s\nstderr:\n%s" % (rc, out, err)
    assert re.search(r"eddy: configuration file \S+ test failed",
                     out + err), err


# --------------------------------------------------------------------------
# informational flags


def test_version_short():
    rc, out, err = run_eddy(["-v"])
    assert rc == 0
    text = (out + err).strip()
    assert re.match(r"^eddy/\d+\.\d+\.\d+$", text), repr(text)


def test_version_long():
    rc, out, err = run_eddy(["--version"])
    assert rc == 0
    assert re.match(r"^eddy/\d+\.\d+\.\d+$", (out + err).strip())


def test_version_verbose_lists_modules_and_libraries():
    rc, out, err = run_eddy(["-V"])
    assert rc == 0
    text = out + err
    assert re.search(r"^eddy/\d+\.\d+\.\d+", text, re.M), text
    low = text.lower()
    for lib in ("openssl", "pcre2", "yaml"):
        assert lib in low, "%s missing from -V:\n%s" % (lib, text)
    # Library versions, e.g. "OpenSSL 3.0.11", "PCRE2 10.42", "libyaml 0.2.5".
    assert re.search(r"openssl\D{0,20}\d+\.\d+", low), text
    assert re.search(r"pcre2\D{0,20}\d+\.\d+", low), text
    assert re.search(r"yaml\D{0,20}\d+\.\d+", low), text
    # The compiled-in modules, at least the ones the foundation has.
    assert "return" in low, text
    assert re.search(r"\bcore\b|core_module", low), text


def test_help():
    rc, out, err = run_eddy(["-h"])
    assert rc == 0
    text = out + err
    assert "usage" in text.lower(), text
    for flag in ("-c", "-p", "-t", "-T", "-s", "-v", "-V"):
        assert flag in text, "%s missing from -h:\n%s" % (flag, text)


def test_help_long():
    rc, out, err = run_eddy(["--help"])
    assert rc == 0
    assert "usage" in (out + err).lower()


def test_unknown_flag():
    rc, out, err = run_eddy(["-Z"])
    assert rc == 1, (rc, out, err)
    assert err.strip(), "no message for an unknown flag"


def test_unknown_long_flag():
    rc, out, err = run_eddy(["--no-such-flag"])
    assert rc == 1, (rc, out, err)


def test_missing_flag_argument():
    rc, out, err = run_eddy(["-c"])
    assert rc == 1, (rc, out, err)


def test_unknown_signal_word(prefix):
    conf, _ = write_conf(prefix, GOOD)
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-s", "bogus"])
    assert rc == 1, (rc, out, err)


# --------------------------------------------------------------------------
# -t on a good config


def test_t_good_config(prefix):
    conf, _ = write_conf(prefix, GOOD)
    rc, out, err = check(prefix, conf)
    assert rc == 0, err
    assert re.search(r"eddy: configuration file \S*eddy\.yaml test is "
                     r"successful", out + err), out + err
    assert not error_lines(out + err)
    # -t neither writes the pid file nor starts anything.
    assert not (prefix / "logs" / "eddy.pid").exists()


def test_t_long_option(prefix):
    conf, _ = write_conf(prefix, GOOD)
    rc, out, err = run_eddy(["--prefix", prefix, "--config", conf, "--test"])
    assert rc == 0, err
    assert "test is successful" in out + err


def test_t_default_config_under_prefix(prefix):
    write_conf(prefix, GOOD)                  # prefix/conf/eddy.yaml
    rc, out, err = run_eddy(["-p", prefix, "-t"], cwd="/")
    assert rc == 0, err
    assert "test is successful" in out + err


def test_t_relative_config_against_cwd(prefix):
    write_conf(prefix, GOOD, "conf/other.yaml")
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/other.yaml", "-t"],
                            cwd=prefix)
    assert rc == 0, err
    assert "other.yaml test is successful" in out + err


def test_t_missing_config_file(prefix):
    rc, out, err = run_eddy(["-p", prefix, "-c", prefix / "conf/nope.yaml",
                             "-t"])
    assert rc == 1
    assert "nope.yaml" in out + err


def test_t_missing_root(prefix):
    conf, text = write_conf(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            root: no_such_dir
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert "no_such_dir" in err


# --------------------------------------------------------------------------
# -t on bad configs: every error names file:line:col


def test_t_unknown_key_with_suggestion(prefix):
    conf, text = write_conf(prefix, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            roots: html
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    line, col = position(text, "roots")
    assert (line, col) == (4, 5)
    assert_error_at(err, "eddy.yaml", line, col, r'unknown key "roots"',
                    r'did you mean "root"')


def test_t_unknown_key_in_location(prefix):
    conf, text = write_conf(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                retrun: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    line, col = position(text, "retrun")
    assert_error_at(err, "eddy.yaml", line, col, r'unknown key "retrun"',
                    r'did you mean "return"')


def test_t_unknown_key_at_main_level(prefix):
    conf, text = write_conf(prefix, """
        worker: 2
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert_error_at(err, "eddy.yaml", 1, 1, r'unknown key "worker"',
                    r'did you mean "workers"')


def test_t_key_in_wrong_level(prefix):
    conf, text = write_conf(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            workers: 2
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    line, col = position(text, "workers")
    assert (line, col) == (3, 5)
    assert_error_at(err, "eddy.yaml", line, col, r"workers", r"not allowed")


def test_t_location_key_at_main_level(prefix):
    conf, text = write_conf(prefix, """
        return: 204
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert_error_at(err, "eddy.yaml", 1, 1, r"return", r"not allowed")


def _value_error(prefix, text, key, value):
    """The error for `key: value` is reported on its line, at the value
    (or at the key)."""
    conf, text = write_conf(prefix, text)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    kline, kcol = position(text, key)
    vline, vcol = position(text, value, 1 if value != key else 2)
    assert kline == vline
    return assert_error_at(err, "eddy.yaml", vline, (vcol, kcol))


def test_t_wrong_type(prefix):
    _value_error(prefix, """
        workers: [1]
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """, "workers", "[1]")


def test_t_wrong_type_mapping_expected(prefix):
    _value_error(prefix, """
        events: 5
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """, "events", "5")


def test_t_bad_duration(prefix):
    _value_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            keepalive_timeout: 10x
            locations:
              /:
                return: 204
        """, "keepalive_timeout", "10x")


def test_t_negative_size(prefix):
    _value_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            client_max_body_size: -5
            locations:
              /:
                return: 204
        """, "client_max_body_size", "-5")


def test_t_bad_enum(prefix):
    ln = _value_error(prefix, """
        events: {accept: bogus}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """, "accept", "bogus")
    # The message should say what is valid.
    assert re.search(r"bogus|exclusive|reuseport", ln), ln


def test_t_workers_out_of_range(prefix):
    _value_error(prefix, """
        workers: 0
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """, "workers", "0")


def test_t_bad_return_status(prefix):
    _value_error(prefix, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: nope
        """, "return", "nope")


def test_t_yaml_syntax_error(prefix):
    conf, text = write_conf(prefix, """
        workers: 1
        shutdown_timeout: 2s: x
        servers: []
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert re.search(r"eddy\.yaml:2:\d+: ", err), err


def test_t_yaml_unclosed_flow_sequence(prefix):
    conf, text = write_conf(prefix, """
        workers: 1
        servers:
          - listen: 127.0.0.1:{port}
            names: [a, b
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert re.search(r"eddy\.yaml:[45]:\d+: ", err), err


def test_t_duplicate_key(prefix):
    conf, text = write_conf(prefix, """
        workers: 1
        shutdown_timeout: 2s
        workers: 2
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert_error_at(err, "eddy.yaml", 3, 1, r"duplicate", r"workers")


def test_t_unset_env(prefix):
    name = "EDDY_TEST_SURELY_UNSET_VAR"
    assert name not in os.environ
    conf, text = write_conf(prefix, """
        workers: 1
        shutdown_timeout: ${env:%s}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """ % name)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    line, _ = position(text, "${env:")
    assert re.search(r"eddy\.yaml:%d:\d+: .*%s" % (line, name), err), err


def test_t_error_in_included_file(prefix):
    conf, _ = write_conf(prefix, """
        workers: 1
        include: conf.d/*.yaml
        """)
    _, inc = write_conf(prefix, """
        shutdown_timeout: 2s
        servers:
          - listen: 127.0.0.1:{port}
            roots: html
            locations:
              /:
                return: 204
        """, "conf/conf.d/servers.yaml")
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    line, col = position(inc, "roots")
    assert_error_at(err, "conf.d/servers.yaml", line, col,
                    r'unknown key "roots"')


def test_t_include_missing_file_is_named(prefix):
    conf, _ = write_conf(prefix, """
        workers: 1
        include: conf.d/nothing.yaml
        servers: []
        """)
    rc, out, err = check(prefix, conf)
    # A glob that matches nothing may be fine; a plain missing file must
    # be reported, naming the including file's position.
    if rc != 0:
        assert_failed(rc, out, err)
        assert re.search(r"eddy\.yaml:2:\d+: .*nothing\.yaml", err), err


def test_t_at_most_ten_errors(prefix):
    bad = "".join("bogus_key_%d: 1\n" % i for i in range(1, 13))
    conf, text = write_conf(prefix, bad + """servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: 204
""")
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    lines = error_lines(err)
    assert 1 <= len(lines) <= 10, err
    assert len(lines) == 10, err
    assert re.search(r"eddy\.yaml:1:1: .*bogus_key_1\b", err), err


def test_t_several_errors_reported_together(prefix):
    conf, text = write_conf(prefix, """
        workers: [1]
        servers:
          - listen: 127.0.0.1:{port}
            roots: html
            keepalive_timeout: 10x
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert len(error_lines(err)) >= 3, err
    assert_error_at(err, "eddy.yaml", 4, 5, r'unknown key "roots"')


def test_t_server_without_listen(prefix):
    conf, text = write_conf(prefix, """
        servers:
          - names: [a.example]
            locations:
              /:
                return: 204
        """)
    rc, out, err = check(prefix, conf)
    assert_failed(rc, out, err)
    assert re.search(r"eddy\.yaml:2:\d+: .*listen", err), err


# --------------------------------------------------------------------------
# -T and ${env:}


def test_T_dumps_effective_config(prefix):
    conf, _ = write_conf(prefix, """
        workers: 1
        include: conf.d/*.yaml
        """)
    port = free_port()
    (prefix / "conf/conf.d").mkdir()
    (prefix / "conf/conf.d/servers.yaml").write_text(format_config("""
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              = /healthz:
                return: {status: 200, body: "ok"}
        """, [port]))
    rc, out, err = check(prefix, conf, "-T")
    assert rc == 0, err
    # Defaults are filled in.
    for key in ("shutdown_timeout", "max_restarts", "pid_file", "events",
                "accept", "backlog", "max_connections"):
        assert re.search(r"^\s*%s:" % key, out, re.M), \
            "%s missing from -T output:\n%s" % (key, out)
    # The include is expanded.
    assert str(port) in out, out
    assert "/healthz" in out, out
    assert not re.search(r"^\s*include:", out, re.M), out
    assert re.search(r"^workers:\s*\"?1\"?\s*$", out, re.M), out
    # stdout is YAML only; the verdict goes to stderr.
    assert "test is successful" not in out


def test_T_output_is_a_valid_config(prefix):
    conf, _ = write_conf(prefix, GOOD)
    rc, out, err = check(prefix, conf, "-T")
    assert rc == 0, err
    dumped = prefix / "conf" / "dumped.yaml"
    dumped.write_text(out)
    rc, out2, err2 = check(prefix, dumped)
    assert rc == 0, "the -T output does not load:\n%s\n%s" % (out, err2)


def test_env_default_used_when_unset(prefix):
    name = "EDDY_TEST_WORKERS_UNSET"
    assert name not in os.environ
    conf, _ = write_conf(prefix, """
        workers: ${env:%s:-3}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: 204
        """ % name)
    rc, out, err = check(prefix, conf, "-T")
    assert rc == 0, err
    assert re.search(r"^workers:\s*\"?3\"?\s*$", out, re.M), out


def test_env_value_wins_over_default(prefix):
    conf, _ = write_conf(prefix, """
        workers: ${env:EDDY_TEST_WORKERS:-3}
        shutdown_timeout: ${env:EDDY_TEST_SHUTDOWN}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /:
                return: {status: 200, body: "x${env:EDDY_TEST_BODY}y"}
        """)
    rc, out, err = check(prefix, conf, "-T", env={
        "EDDY_TEST_WORKERS": "2", "EDDY_TEST_SHUTDOWN": "3s",
        "EDDY_TEST_BODY": "middle"})
    assert rc == 0, err
    assert re.search(r"^workers:\s*\"?2\"?\s*$", out, re.M), out
    assert "xmiddley" in out, out


# --------------------------------------------------------------------------
# -s without a running master


def test_signal_without_master(prefix):
    conf, _ = write_conf(prefix, GOOD)
    pid = prefix / "logs" / "eddy.pid"
    assert not pid.exists()
    for word in ("reload", "quit", "stop", "reopen", "upgrade"):
        rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-s", word])
        assert (rc, out) == (1, ""), (rc, out, err)
        assert err == ("eddy: no running master: cannot open pid file %s "
                       "(No such file or directory)\n" % pid), err


def test_signal_with_unreadable_pid(prefix):
    conf, _ = write_conf(prefix, GOOD)
    pid = prefix / "logs" / "eddy.pid"
    for text in ("", "\n", "abc\n", "0\n", "-5\n"):
        pid.write_text(text)
        rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-s", "quit"])
        assert (rc, out) == (1, ""), (text, rc, out, err)
        assert err == "eddy: no running master: pid file %s names no " \
                      "process\n" % pid, (text, err)


def test_regress_signal_not_sent_to_another_program(prefix):
    """A pid file left by a master that died, its pid since reused by
    another program: -s names it and signals nothing (it used to kill
    the process). "PIDjunk" is no pid."""
    conf, _ = write_conf(prefix, GOOD)
    pid = prefix / "logs" / "eddy.pid"
    other = subprocess.Popen(["sleep", "30"])
    try:
        for word in ("stop", "quit", "reopen"):
            pid.write_text("%d\n" % other.pid)
            rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-s", word])
            assert (rc, out) == (1, ""), (word, rc, out, err)
            assert err == ("eddy: no running master: pid file %s names pid "
                           "%d, which runs \"sleep\", not eddy (a stale pid "
                           "file?)\n" % (pid, other.pid)), err
            pid.write_text("%djunk\n" % other.pid)
            rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-s", word])
            assert rc == 1 and "names no process" in err, (word, err)
        time.sleep(0.2)
        assert other.poll() is None, "the other program got the signal"
    finally:
        other.kill()
        other.wait()


def test_signal_with_stale_pid_file(prefix):
    conf, _ = write_conf(prefix, GOOD)
    # A pid that cannot be a live process (above the kernel's pid_max).
    (prefix / "logs" / "eddy.pid").write_text("4194305\n")
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-s", "quit"])
    assert (rc, out) == (1, ""), (rc, out, err)
    assert err == ("eddy: no running master: pid file %s names a process "
                   "that is gone\n" % (prefix / "logs" / "eddy.pid")), err
