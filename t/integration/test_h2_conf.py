"""HTTP/2 configuration (spec/http2.md, Configuration): the http2 block's
keys and ranges at file:line:col, the level it may appear at, `http2` on
listen items (an address agrees across its servers), the defaults -T
shows, inheritance field by field, and configure's --without-http2."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import check_config_error, format_config, free_port, run_eddy
from h2util import Raw, hf

TOP = Path(__file__).resolve().parents[2]

BASE = """
error_log: logs/error.log
%s
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
%s
    locations:
      /:
        return: 200
"""


@pytest.mark.parametrize("key,value,msg", [
    ("max_concurrent_streams", "0", "expected an integer from 1 to 1000"),
    ("max_concurrent_streams", "1001", "expected an integer from 1 to 1000"),
    ("initial_window_size", "512", "expected a size from 1k to 16m"),
    ("initial_window_size", "17m", "expected a size from 1k to 16m"),
    ("connection_window_size", "32k", "expected a size from 64k to 1g"),
    ("max_frame_size", "1k", "expected a size from 16k to 16777215"),
    ("max_frame_size", "16m", "expected a size from 16k to 16777215"),
    ("header_table_size", "65k", "expected a size from 0 to 64k"),
    ("idle_timeout", "soon", "expected a duration"),
    ("ping_timeout", "x", "expected a duration"),
    ("enable_connect_protocol", "maybe", "expected true or false"),
])
def test_range_errors(prefix, key, value, msg):
    text = BASE % ("http2:\n  %s: %s" % (key, value), "")
    check_config_error(prefix, text, value, re.escape(
        'invalid value for "http2.%s"' % key), re.escape(msg))


def test_unknown_key_in_block(prefix):
    text = BASE % ("http2:\n  max_streams: 5", "")
    check_config_error(prefix, text, "max_streams", "max_streams")


def test_http2_in_location_is_wrong_level(prefix):
    text = """
servers:
  - listen: 127.0.0.1:{port}
    locations:
      /:
        http2: {max_frame_size: 16k}
        return: 200
"""
    check_config_error(prefix, text, "http2", re.escape(
        'key "http2" is not allowed in location "/" (allowed in: main '
        'level, server)'))


def test_listen_http2_must_agree(prefix):
    text = """
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    locations:
      /:
        return: 200
  - listen: [{address: "127.0.0.1:{port}", http2: false}]
    locations:
      /:
        return: 200
"""
    check_config_error(prefix, text, "false", re.escape(
        'has http2: false here but true in server #1'), r'listen "127\.0\.0\.1:\d+"')


def test_listen_http2_not_a_bool(prefix):
    text = (BASE % ("", "")).replace("http2: true", "http2: yes please")
    check_config_error(prefix, text, "yes please", "expected true or false")


def dump(prefix, text):
    text = format_config(text, [free_port()], prefix)
    for d in ("conf", "logs"):
        (prefix / d).mkdir(exist_ok=True)
    conf = prefix / "conf" / "eddy.yaml"
    conf.write_text(text)
    rc, out, err = run_eddy(["-p", prefix, "-c", conf, "-T"], cwd=prefix)
    assert rc == 0, err
    return out


def test_dump_defaults_and_listen(prefix):
    out = dump(prefix, """
servers:
  - listen: [{address: "127.0.0.1:{port}"}]
    http2: {max_concurrent_streams: 50}
    locations:
      /:
        return: 200
""")
    assert re.search(r"http2:\n  max_concurrent_streams: 128\n"
                     r"  initial_window_size: 64k\n"
                     r"  connection_window_size: 1m\n"
                     r"  max_frame_size: 16k\n"
                     r"  header_table_size: 4k\n", out), out
    assert "max_concurrent_streams: 50" in out


def test_inherits_field_by_field(eddy):
    e = eddy("""
http2: {max_concurrent_streams: 20, initial_window_size: 128k}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    http2: {max_concurrent_streams: 30}
    locations:
      /:
        return: 200
""")
    raw = Raw(e.port)
    f = raw.until(lambda f: isinstance(f, hf.SettingsFrame)
                  and "ACK" not in f.flags)
    s = dict(f.settings)
    assert s[hf.SettingsFrame.MAX_CONCURRENT_STREAMS] == 30
    assert s[hf.SettingsFrame.INITIAL_WINDOW_SIZE] == 128 * 1024
    raw.close()


def configure(tmp_path, *args):
    for name in ("configure", "auto", "modules"):
        src = TOP / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy2(src, tmp_path / name)
    p = subprocess.run(["sh", "./configure", *args], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def test_configure_probes_libnghttp2(tmp_path):
    rc, out = configure(tmp_path)
    assert rc == 0, out
    assert re.search(r"checking for libnghttp2 >= 1\.52\.\.\. 1\.\d+", out)
    mk = (tmp_path / "objs" / "Makefile").read_text()
    assert "-lnghttp2" in mk
    h = (tmp_path / "objs" / "ed_auto_config.h").read_text()
    assert "#define ED_HAVE_HTTP2 1" in h


def test_configure_without_http2(tmp_path):
    rc, out = configure(tmp_path, "--without-http2")
    assert rc == 0, out
    assert "libnghttp2" not in out
    mk = (tmp_path / "objs" / "Makefile").read_text()
    assert "-lnghttp2" not in mk
    h = (tmp_path / "objs" / "ed_auto_config.h").read_text()
    assert "#define ED_HAVE_HTTP2 0" in h


def test_built_without_http2_refuses_its_keys(tmp_path):
    """A real build --without-http2 (unoptimised, to be quick): -t names
    every http2 key and listen item."""
    import signal

    signal.alarm(300)   # a build: more than the usual bound, still bounded
    for name in ("configure", "auto", "modules", "src", "Makefile"):
        src = TOP / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy2(src, tmp_path / name)
    p = subprocess.run(["sh", "./configure", "--without-http2",
                        "--with-debug"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(["make", "-f", "objs/Makefile", "-j2", "objs/eddy"],
                       cwd=tmp_path, capture_output=True, text=True,
                       timeout=280)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    pre = tmp_path / "p"
    (pre / "conf").mkdir(parents=True)
    (pre / "logs").mkdir()
    text = format_config("""
http2: {max_frame_size: 16k}
servers:
  - listen: [{address: "127.0.0.1:{port}", http2: true}]
    locations:
      /:
        return: 200
""", [free_port()], pre)
    (pre / "conf" / "eddy.yaml").write_text(text)
    p = subprocess.run([str(tmp_path / "objs" / "eddy"), "-p", str(pre),
                        "-c", str(pre / "conf" / "eddy.yaml"), "-t"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1
    assert "eddy.yaml:1:8: eddy was built without HTTP/2" in p.stderr
    assert re.search(r"eddy\.yaml:3:\d+: eddy was built without HTTP/2",
                     p.stderr), p.stderr
