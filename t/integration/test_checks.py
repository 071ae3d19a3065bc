"""Checks at -t (operator.md "Checks at -t"): each row's exact message and
exit status, warnings and their budget, -q and --strict, and conf.d files
holding servers and upstreams (operator.md "conf.d").

Configs are written under the prefix and named relative to it (-c
conf/eddy.yaml, run from the prefix) so messages are exact."""

import re
import signal

from conftest import (format_config, free_port, http_request, run_eddy,
                      wait_for)

OK_SERVER = """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: 204
"""


def write(prefix, name, text, port=None):
    path = prefix / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_config(text, [port or free_port()], prefix))
    return path


def run_t(prefix, *flags, conf="conf/eddy.yaml"):
    """eddy -p PREFIX -c CONF -t FLAGS from the prefix: (rc, out, err)."""
    return run_eddy(["-p", prefix, "-c", conf, "-t"] + list(flags),
                    cwd=prefix)


def lines(err):
    """stderr's lines without the memory estimate's "# " lines (checked
    by test_dump.py)."""
    return [ln for ln in err.splitlines() if ln and not ln.startswith("#")]


def assert_fails_with(prefix, text, message, *flags):
    write(prefix, "conf/eddy.yaml", text)
    rc, out, err = run_t(prefix, *flags)
    assert rc == 1, err
    assert lines(err) == [
        message,
        "eddy: configuration file conf/eddy.yaml test failed"], err


# --------------------------------------------------------------------------
# unknown variables and captures


def test_unknown_variable_in_return_body(prefix):
    assert_fails_with(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: {status: 200, body: "from $remote_adr\\n"}
""", 'conf/eddy.yaml:5:43: unknown variable "$remote_adr"; '
     'did you mean "$remote_addr"?')


def test_unknown_variable_in_log_format(prefix):
    assert_fails_with(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    access_log: {path: logs/a.log, format: "$remote_addr ${stauts} $uri"}
    locations:
      /:
        return: 204
""", 'conf/eddy.yaml:3:58: unknown variable "$stauts"; '
     'did you mean "$status"?')


def test_unknown_variable_family_and_no_guess(prefix):
    write(prefix, "conf/eddy.yaml", """
servers:
  - listen: 127.0.0.1:{port}
    headers:
      add: {X-A: "$cookies_id", X-B: "$args_page", X-C: "$zzzzzz"}
    locations:
      /:
        return: 204
""")
    rc, out, err = run_t(prefix)
    assert rc == 1
    assert lines(err)[:3] == [
        'conf/eddy.yaml:4:19: unknown variable "$cookies_id"; '
        'did you mean "$cookie_id"?',
        'conf/eddy.yaml:4:39: unknown variable "$args_page"; '
        'did you mean "$arg_page"?',
        'conf/eddy.yaml:4:58: unknown variable "$zzzzzz"',
    ], err


def test_known_variables_and_captures_pass(prefix):
    write(prefix, "conf/eddy.yaml", """
servers:
  - listen: 127.0.0.1:{port}
    names: ["~^(?<sub>[a-z]+)\\\\.example$"]
    access_log: {path: logs/a.log, format: "$http_x_y $arg_a $cookie_b $sub $upstream_status"}
    locations:
      "~ ^/u/(\\\\d+)/(?<tail>.*)$":
        return: {status: 200, body: "$1 $2 $tail $sub ${host}"}
      /p/:
        return: {status: 200, body: "$1 $sub"}
""")
    rc, out, err = run_t(prefix)
    assert rc == 0, err


def test_capture_the_regex_lacks(prefix):
    assert_fails_with(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      "~ ^/u/(\\\\d+)$":
        redirect: {to: "/user/$1/$2", status: 302}
""", 'conf/eddy.yaml:5:34: "$2" but location "~ ^/u/(\\d+)$" has 1 '
     'capture group')


def test_capture_in_a_prefix_location(prefix):
    assert_fails_with(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /u/:
        return: {status: 200, body: "$1"}
""", 'conf/eddy.yaml:5:38: "$1" but location "/u/" is not a regex, nor '
     'is any server name')


def test_capture_of_a_server_name(prefix):
    assert_fails_with(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    names: ["~^(www)\\\\.example$"]
    locations:
      /u/:
        return: {status: 200, body: "$1$2"}
""", 'conf/eddy.yaml:6:40: "$2" but server name "~^(www)\\.example$" has 1 '
     'capture group')


def test_double_dollar_is_a_literal_dollar(eddy):
    e = eddy("""
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: {status: 200, body: "$$host=$host $$$$ 5$"}
""")
    r = e.request("GET", "/", headers={"Host": "h.test"})
    assert r.status == 200
    assert r.body == b"$host=h.test $$ 5$"


# --------------------------------------------------------------------------
# nginx directive names


def test_nginx_name_server_name(prefix):
    assert_fails_with(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    server_name: shop.example
    locations:
      /:
        return: 204
""", 'conf/eddy.yaml:3:5: unknown key "server_name" in server #1; '
     'eddy calls it "names"')


def test_nginx_names_nested_and_other_level(prefix):
    write(prefix, "conf/eddy.yaml", """
worker_connections: 10
servers:
  - listen: 127.0.0.1:{port}
    worker_processes: 4
    sendfile: on
    locations:
      /:
        proxy_pass: http://127.0.0.1:1
        add_header: {X-A: b}
        static: {index: [a], try_file: [x]}
""")
    rc, out, err = run_t(prefix)
    assert rc == 1
    assert lines(err)[:5] == [
        'conf/eddy.yaml:1:1: unknown key "worker_connections" in main level; '
        'eddy calls it "events.max_connections" '
        '(events: {max_connections: ...})',
        'conf/eddy.yaml:4:5: unknown key "worker_processes" in server #1; '
        'eddy calls it "workers" (main level)',
        'conf/eddy.yaml:5:5: unknown key "sendfile" in server #1; '
        'sendfile is always on in eddy',
        'conf/eddy.yaml:8:9: unknown key "proxy_pass" in location "/"; '
        'eddy calls it "proxy.pass" (proxy: {pass: ...})',
        'conf/eddy.yaml:9:9: unknown key "add_header" in location "/"; '
        'eddy calls it "headers.add" (headers: {add: ...}; "headers.set" '
        'replaces)',
    ], err
    # Not an nginx name: the did-you-mean stays.
    assert lines(err)[5] == (
        'conf/eddy.yaml:10:30: unknown key "try_file" in static; '
        'did you mean "try_files"?'), err


# --------------------------------------------------------------------------
# warnings: include matching nothing, -q, --strict


NO_MATCH = """
workers: 1
include: conf.d/*.yml
""" + OK_SERVER


def write_no_match(prefix):
    write(prefix, "conf/eddy.yaml", NO_MATCH)
    write(prefix, "conf/conf.d/shop.yaml", "workers: 2\n")
    write(prefix, "conf/conf.d/default.yaml", "workers: 2\n")
    return 'conf/eddy.yaml:2:10: warning: include "conf.d/*.yml" matches no ' \
        'file in %s (it holds: default.yaml, shop.yaml)' \
        % (prefix / "conf/conf.d").resolve()


def test_include_glob_matching_nothing_warns(prefix):
    warning = write_no_match(prefix)
    rc, out, err = run_t(prefix)
    assert rc == 0, err
    assert lines(err) == [
        warning,
        "eddy: configuration file conf/eddy.yaml test is successful"], err


def test_quiet_prints_nothing_on_success(prefix):
    write_no_match(prefix)
    rc, out, err = run_t(prefix, "-q")
    assert (rc, out, err) == (0, "", "")
    rc, out, err = run_t(prefix, "--quiet")
    assert (rc, out, err) == (0, "", "")


def test_quiet_still_prints_errors(prefix):
    write(prefix, "conf/eddy.yaml", "workers: 1\nworkerz: 2\n" + OK_SERVER)
    rc, out, err = run_t(prefix, "-q")
    assert rc == 1
    assert lines(err)[0].startswith(
        'conf/eddy.yaml:2:1: unknown key "workerz" in main level'), err


def test_strict_makes_a_warning_fail(prefix):
    warning = write_no_match(prefix)
    rc, out, err = run_t(prefix, "--strict")
    assert rc == 1
    assert lines(err) == [
        warning,
        "eddy: configuration file conf/eddy.yaml test failed (warnings "
        "with --strict)"], err
    rc, out, err = run_t(prefix, "--strict", "-q")
    assert rc == 1 and warning in err


def test_warning_budget(prefix):
    text = "workers: 1\ninclude: [%s]\n" % ", ".join(
        "none%d/*.yaml" % i for i in range(12)) + OK_SERVER
    write(prefix, "conf/eddy.yaml", text)
    rc, out, err = run_t(prefix)
    assert rc == 0
    ws = [ln for ln in lines(err) if ": warning: " in ln]
    assert len(ws) == 10
    assert "eddy: 2 more warnings not shown" in lines(err), err


def test_warnings_are_logged_at_start(eddy):
    e = eddy("""
error_log: {path: logs/error.log, level: info}
include: nothing/*.yaml
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: 204
""")
    assert http_request(e.port, "GET", "/").status == 204
    log = (e.prefix / "logs/error.log").read_text()
    assert re.search(r'\[warn\] \d+#0: \S+/conf/eddy.yaml:2:10: warning: '
                     r'include "nothing/\*.yaml" matches no file: directory '
                     r'\S+/conf/nothing does not exist', log), log


def test_warnings_are_logged_at_reload_which_they_do_not_stop(eddy):
    conf = """
error_log: {path: logs/error.log, level: info}
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        return: {status: 200, body: "%s"}
"""
    e = eddy(conf % "one")
    assert e.request("GET", "/").body == b"one"
    e.write_config("include: later/*.yaml\n" + conf % "two")
    e.signal(signal.SIGHUP)
    assert wait_for(lambda: e.request("GET", "/").body == b"two")
    log = (e.prefix / "logs/error.log").read_text()
    assert re.search(r'\[warn\] \d+#0: \S+/conf/eddy.yaml:1:10: warning: '
                     r'include "later/\*.yaml" matches no file', log), log


# --------------------------------------------------------------------------
# listeners and servers


def test_no_listener(prefix):
    assert_fails_with(prefix, "workers: 1\n",
                      'conf/eddy.yaml:1:1: no server listens anywhere (no '
                      'servers defined); add a server with "listen"')


def conf_d(prefix, a, b, main="workers: 1\ninclude: conf.d/*.yaml\n"):
    port = free_port()
    write(prefix, "conf/eddy.yaml", main, port)
    write(prefix, "conf/conf.d/a.yaml", a, port)
    write(prefix, "conf/conf.d/b.yaml", b, port)


def test_one_name_twice_on_an_address(prefix):
    conf_d(prefix, """
servers:
  - listen: {address: "127.0.0.1:{port}", default: true}
    names: [www.example, shop.example]
""", """
servers:
  - listen: 127.0.0.1:{port}
    names: [shop.example]
""")
    rc, out, err = run_t(prefix)
    assert rc == 0, err
    port = re.search(r"127\.0\.0\.1:(\d+)",
                     (prefix / "conf/conf.d/a.yaml").read_text()).group(1)
    assert lines(err) == [
        'conf/conf.d/b.yaml:3:13: warning: server name "shop.example" on '
        '127.0.0.1:%s is already used by server #1 (conf/conf.d/a.yaml:3:26)'
        '; this server is never chosen for it' % port,
        "eddy: configuration file conf/eddy.yaml test is successful"], err


def test_default_by_file_order(prefix):
    conf_d(prefix, """
servers:
  - listen: 127.0.0.1:{port}
    names: [a.example]
""", """
servers:
  - listen: 127.0.0.1:{port}
    names: [b.example]
""")
    rc, out, err = run_t(prefix)
    assert rc == 0, err
    port = re.search(r"127\.0\.0\.1:(\d+)",
                     (prefix / "conf/conf.d/a.yaml").read_text()).group(1)
    assert lines(err) == [
        'conf/conf.d/a.yaml:2:5: warning: 127.0.0.1:%s has no "default: '
        'true" server; this one is the default only because its file sorts '
        'first' % port,
        "eddy: configuration file conf/eddy.yaml test is successful"], err
    # Both in one file: the order is the one written, nothing to say.
    (prefix / "conf/conf.d/b.yaml").unlink()
    write(prefix, "conf/conf.d/a.yaml", """
servers:
  - listen: 127.0.0.1:%s
  - listen: 127.0.0.1:%s
""" % (port, port))
    rc, out, err = run_t(prefix)
    assert rc == 0 and "warning" not in err, err


# --------------------------------------------------------------------------
# log and pid directories


def test_missing_log_directory_names_the_default(tmp_path):
    prefix = tmp_path / "site"
    write(prefix, "conf/eddy.yaml", "workers: 1\npid_file: conf/eddy.pid\n"
          + OK_SERVER)
    rc, out, err = run_t(prefix)
    assert rc == 1
    assert lines(err) == [
        'conf/eddy.yaml:1:1: cannot open access log "%s/logs/access.log": '
        'directory %s/logs does not exist; access_log is not set, so the '
        'default "logs/access.log" applies under the prefix %s (from -p); '
        'create the directory or set access_log' % (prefix, prefix, prefix),
        "eddy: configuration file conf/eddy.yaml test failed"], err
    # -t created nothing.
    assert sorted(p.name for p in prefix.iterdir()) == ["conf"]
    assert sorted(p.name for p in (prefix / "conf").iterdir()) == [
        "eddy.yaml"]


def test_missing_pid_directory_set_by_key(prefix):
    write(prefix, "conf/eddy.yaml", "workers: 1\npid_file: run/eddy.pid\n"
          + OK_SERVER)
    rc, out, err = run_t(prefix)
    assert rc == 1
    assert lines(err)[0] == (
        'conf/eddy.yaml:2:11: cannot open pid file "%s/run/eddy.pid": '
        'directory %s/run does not exist; create the directory or change '
        'pid_file' % (prefix, prefix)), err


def test_t_creates_no_log_file(prefix):
    write(prefix, "conf/eddy.yaml", "workers: 1\n" + OK_SERVER)
    rc, out, err = run_t(prefix)
    assert rc == 0, err
    assert list((prefix / "logs").iterdir()) == []


# --------------------------------------------------------------------------
# conf.d: servers and upstreams from several files


CONF_D_A = """
upstreams:
  shop: {servers: ["127.0.0.1:9001"]}
servers:
  - listen: {address: "127.0.0.1:{port}", default: true}
    names: [shop.example]
    locations: {/: {proxy: {pass: shop}}}
"""

CONF_D_B = """
upstreams:
  blog: {servers: ["127.0.0.1:9002"]}
servers:
  - listen: 127.0.0.1:{port}
    names: [blog.example]
    locations: {/: {proxy: {pass: blog}}}
"""

CONF_D_MAIN = """
workers: 1
upstreams:
  main: {servers: ["127.0.0.1:9000"]}
include: conf.d/*.yaml
servers:
  - listen: 127.0.0.1:{port}
    names: [main.example]
    locations: {/: {proxy: {pass: main}}}
"""


def test_conf_d_servers_and_upstreams(prefix):
    conf_d(prefix, CONF_D_A, CONF_D_B, CONF_D_MAIN)
    rc, out, err = run_t(prefix)
    assert rc == 0, err
    assert "warning" not in err
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-T"],
                            cwd=prefix)
    assert rc == 0, err
    # Each include is replaced where it stands by its files, in order:
    # the include comes before main's own servers, after its upstreams.
    names = re.findall(r"^    names: \[(\w+)\.example\]$", out, re.M)
    assert names == ["shop", "blog", "main"], out
    ups = re.findall(r"^  (\w+):$", out.split("\nupstreams:")[1], re.M)
    assert ups == ["main", "shop", "blog"], out


def test_conf_d_order_follows_the_include(prefix):
    main = CONF_D_MAIN.replace("include: conf.d/*.yaml\n", "") + \
        "include: conf.d/*.yaml\n"
    conf_d(prefix, CONF_D_B.replace("blog", "zed"), CONF_D_A, main)
    rc, out, err = run_eddy(["-p", prefix, "-c", "conf/eddy.yaml", "-T"],
                            cwd=prefix)
    assert rc == 0, err
    names = re.findall(r"^    names: \[(\w+)\.example\]$", out, re.M)
    assert names == ["main", "zed", "shop"], out


def test_conf_d_upstream_defined_twice(prefix):
    conf_d(prefix, CONF_D_A, CONF_D_B.replace("blog:", "shop:"))
    rc, out, err = run_t(prefix)
    assert rc == 1
    assert lines(err) == [
        'conf/conf.d/b.yaml:2:3: upstream "shop" is defined twice (first at '
        'conf/conf.d/a.yaml:2:3)',
        "eddy: configuration file conf/eddy.yaml test failed"], err


def test_conf_d_main_key_set_twice(prefix):
    conf_d(prefix, CONF_D_A, "workers: 2\n" + CONF_D_B)
    rc, out, err = run_t(prefix)
    assert rc == 1
    assert lines(err) == [
        'conf/conf.d/b.yaml:1:1: duplicate key "workers" (already set at '
        'conf/eddy.yaml:1:1)',
        "eddy: configuration file conf/eddy.yaml test failed"], err


def test_conf_d_serves(eddy):
    e = eddy("""
include: conf.d/*.yaml
""", start=False)
    e.write_file("conf/conf.d/a.yaml", e.format("""
servers:
  - listen: 127.0.0.1:{port}
    names: [a.test]
    locations: {/: {return: {status: 200, body: "a"}}}
"""))
    e.write_file("conf/conf.d/b.yaml", e.format("""
servers:
  - listen: 127.0.0.1:{port}
    names: [b.test]
    locations: {/: {return: {status: 200, body: "b"}}}
"""))
    e.start()
    assert e.request("GET", "/", headers={"Host": "b.test"}).body == b"b"
    assert e.request("GET", "/", headers={"Host": "a.test"}).body == b"a"
    # No name matches: the first file's server, by file order.
    assert e.request("GET", "/", headers={"Host": "x.test"}).body == b"a"
