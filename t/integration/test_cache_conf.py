"""The cache's configuration (cache.md): the `caches` block and the
proxy's cache keys, their -t errors at file:line:col, the directory made
at start and -T."""

import os
import re
import stat

import pytest

from conftest import check_config_error, format_config, free_port, run_eddy

BASE = """
    caches:
      main:
        path: {prefix}/cache/main
        max_size: 10m
    servers:
      - listen: 127.0.0.1:{port}
        locations:
          /:
            proxy: %s
    """


@pytest.mark.parametrize("proxy,needle,pattern", [
    # An unknown cache, with a near name.
    ("{pass: 'http://127.0.0.1:9', cache: mian}", "mian",
     r'unknown cache "mian"; did you mean "main"\?'),
    ("{pass: 'http://127.0.0.1:9', cache: other}", "other",
     r'unknown cache "other" \(caches are named'),
    # Cache keys without `cache`.
    ("{pass: 'http://127.0.0.1:9', cache_valid: {200: 1m}}", "cache_valid",
     r'cache_valid needs "cache" in the same proxy block'),
    ("{pass: 'http://127.0.0.1:9', min_uses: 2}", "min_uses",
     r'min_uses needs "cache"'),
    # POST in cache_methods.
    ("{pass: 'http://127.0.0.1:9', cache: main, cache_methods: [GET, POST]}",
     "[GET, POST]", r"POST cannot be cached: the key has no body"),
    ("{pass: 'http://127.0.0.1:9', cache: main, cache_methods: [PUT]}",
     "[PUT]", r"expected GET or HEAD"),
    ("{pass: 'http://127.0.0.1:9', cache: main, cache_valid: {206: 1m}}",
     "206", r'invalid status "206" in cache_valid'),
    ("{pass: 'http://127.0.0.1:9', cache: main, cache_valid: {200: soon}}",
     "soon", r"expected a time"),
    ("{pass: 'http://127.0.0.1:9', cache: main, "
     "cache_ignore_headers: [Pragma]}", "[Pragma]",
     r"expected Cache-Control, Expires, Vary or Set-Cookie"),
    ("{pass: 'http://127.0.0.1:9', cache: main, use_stale: [errors]}",
     "[errors]", r"expected error, timeout"),
    ("{pass: 'http://127.0.0.1:9', cache: main, cache_key: ''}", "''",
     r"cache_key"),
    ("{pass: 'http://127.0.0.1:9', cache: main, cache_key: $nosuch}",
     "$nosuch", r"nosuch"),
    ("{pass: 'http://127.0.0.1:9', cache: main, "
     "cache_lock: {timeout: 5s, enable: true}}", "enable",
     r'unknown key "enable" in cache_lock.*did you mean "enabled"'),
    ("{pass: 'http://127.0.0.1:9', cache: main, min_uses: 0}", "0}",
     r"min_uses"),
    # Not built yet: refused, never silently ignored.
    ("{pass: 'http://127.0.0.1:9', cache: main, purge: true}", "true",
     r"purge: true needs an access rule that covers PURGE here"),
])
def test_proxy_key_errors(tmp_path, proxy, needle, pattern):
    check_config_error(tmp_path, BASE % proxy, needle, pattern)


@pytest.mark.parametrize("cache,needle,pattern", [
    ("{path: cache/a}", "{path", r'cache "a" needs "max_size"'),
    ("{max_size: 1g}", "{max_size", r'cache "a" needs "path"'),
    ("{path: cache/a, max_size: 1g, levels: '1:3'}", "'1:3'",
     r"invalid levels: expected 1 to 3 levels of 1 or 2"),
    ("{path: cache/a, max_size: 1g, levels: '1:2:2:2'}", "'1:2:2:2'",
     r"invalid levels"),
    ("{path: cache/a, max_size: 1g, levels: '1:'}", "'1:'",
     r"invalid levels"),
    ("{path: cache/a, max_size: 1g, levels: ''}", "''", r"invalid levels"),
    ("{path: cache/a, max_size: 1g, keys_zone: 100k}", "100k",
     r"keys_zone"),
    ("{path: cache/a, max_size: 1g, keys_zone: 65g}", "65g", r"keys_zone"),
    ("{path: cache/a, max_size: lots}", "lots", r"max_size"),
    ("{path: cache/a, max_size: 1g, inactiv: 1m}", "inactiv",
     r'did you mean "inactive"'),
])
def test_cache_block_errors(tmp_path, cache, needle, pattern):
    check_config_error(tmp_path, """
        caches:
          a: %s
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /: {return: 204}
        """ % cache, needle, pattern)


def test_two_caches_on_one_path(tmp_path):
    check_config_error(tmp_path, """
        caches:
          a: {path: cache/x, max_size: 1g}
          b: {max_size: 1g, path: cache/x}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /: {return: 204}
        """, "cache/x", r'cache "b" uses the path of cache "a" '
                     r'\(.*eddy.yaml:2\): one cache per path', nth=2)


def write_conf(prefix, text):
    text = format_config(text, [free_port()], prefix)
    for d in ("conf", "logs"):
        (prefix / d).mkdir(exist_ok=True)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    return conf


def test_t_creates_nothing_and_start_makes_the_directory(tmp_path, eddy):
    conf = write_conf(tmp_path, BASE % "{pass: 'http://127.0.0.1:9', "
                      "cache: main}")
    rc, out, err = run_eddy(["-p", tmp_path, "-c", conf, "-t"], cwd=tmp_path)
    assert rc == 0, err
    assert not (tmp_path / "cache").exists()
    e = eddy(BASE % "{pass: 'http://127.0.0.1:9', cache: main}")
    st = os.stat(os.path.join(str(e.prefix), "cache", "main"))
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert os.path.isdir(os.path.join(str(e.prefix), "cache", "main",
                                      ".tmp"))


def test_dump_shows_cache_keys_only_with_cache(tmp_path):
    conf = write_conf(tmp_path, """
        caches:
          main: {path: cache/main, max_size: 64m}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /a:
                proxy: {pass: 'http://127.0.0.1:9', cache: main}
              /b:
                proxy: {pass: 'http://127.0.0.1:9'}
        """)
    rc, out, err = run_eddy(["-p", tmp_path, "-c", conf, "-T"], cwd=tmp_path)
    assert rc == 0, err
    assert "path: cache/main" in out and "max_size: 64m" in out
    assert out.count("cache_key: $scheme://$host$request_uri") == 1
    assert out.count("revalidate: true") == 1
    # The dump loads again.
    conf.write_text(out)
    rc, out2, err = run_eddy(["-p", tmp_path, "-c", conf, "-t"],
                             cwd=tmp_path)
    assert rc == 0, err


def test_purge_needs_a_rule_covering_purge(tmp_path):
    text = """
        caches:
          main: {path: cache/main, max_size: 1m}
        servers:
          - listen: 127.0.0.1:{port}
            access: [{deny: all, methods: [POST]}]
            locations:
              /a:
                proxy: {pass: 'http://127.0.0.1:9', cache: main, purge: yes}
        """
    check_config_error(tmp_path, text, "yes",
                       r"purge: true needs an access rule that covers PURGE")
    # A rule naming PURGE (here inherited from the server) covers it.
    conf = write_conf(tmp_path, text.replace("[POST]", "[PURGE]"))
    rc, out, err = run_eddy(["-p", tmp_path, "-c", conf, "-t"], cwd=tmp_path)
    assert rc == 0, err
    check_config_error(tmp_path, """
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /a:
                access: [{allow: all, methods: PURGE}]
                return: 204
        """, "PURGE", r"invalid methods in access: expected a list")


def test_memory_estimate_counts_the_keys_zone(tmp_path):
    conf = write_conf(tmp_path, """
        caches:
          main: {path: cache/main, max_size: 1g, keys_zone: 2m}
        servers:
          - listen: 127.0.0.1:{port}
            locations:
              /: {proxy: {pass: 'http://127.0.0.1:9', cache: main}}
        """)
    rc, out, err = run_eddy(["-p", tmp_path, "-c", conf, "-T"], cwd=tmp_path)
    assert rc == 0, err
    assert re.search(r"#   shared memory: .*cache main 2\.0 MiB", out), out
