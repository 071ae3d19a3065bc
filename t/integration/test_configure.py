"""./configure and modules/modules.list: a module's line names all of its
files (NAME FILE [FILE...]); --without-NAME leaves every one of them out,
and a core module cannot be left out."""

import re
import shutil
import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]


def configure(tmp_path, *args):
    """Run configure in a copy of what it reads; (returncode, output,
    MODULE_SRCS list, text of the generated module table)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("configure", "auto", "modules"):
        src = TOP / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy2(src, tmp_path / name)
    p = subprocess.run(["sh", "./configure", *args], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    srcs, table = [], ""
    mk = tmp_path / "objs" / "Makefile"
    if p.returncode == 0:
        m = re.search(r"^MODULE_SRCS =(.*)$", mk.read_text(), re.M)
        srcs = m.group(1).split()
        table = (tmp_path / "objs" / "ed_modules.c").read_text()
    return p.returncode, p.stdout + p.stderr, srcs, table


def test_module_with_several_files(tmp_path):
    rc, out, srcs, table = configure(tmp_path)
    assert rc == 0, out
    assert "modules/ed_http_static.c" in srcs
    assert "modules/ed_http_static_conf.c" in srcs
    assert "&ed_http_static_module," in table
    assert "modules/ed_http_proxy_conf.c" in srcs


def test_without_drops_every_file_of_the_module(tmp_path):
    rc, out, srcs, table = configure(tmp_path, "--without-static")
    assert rc == 0, out
    assert "module ed_http_static_module: left out" in out
    assert not [s for s in srcs if "ed_http_static" in s], srcs
    assert "ed_http_static_module" not in table
    # The others stay.
    assert "modules/ed_http_proxy.c" in srcs
    rc, out, srcs, table = configure(tmp_path / "p", "--without-proxy")
    assert rc == 0, out
    assert not [s for s in srcs if "ed_http_proxy" in s], srcs
    assert "modules/ed_http_static_conf.c" in srcs


def test_core_module_cannot_be_left_out(tmp_path):
    rc, out, _, _ = configure(tmp_path, "--without-upstream")
    assert rc != 0
    assert "ed_http_upstream_module is a core module" in out


def test_without_fastcgi(tmp_path):
    rc, out, srcs, table = configure(tmp_path)
    assert rc == 0, out
    assert "modules/ed_http_fastcgi.c" in srcs
    assert "modules/ed_http_fastcgi_conf.c" in srcs
    assert "&ed_http_fastcgi_module," in table
    rc, out, srcs, table = configure(tmp_path / "p", "--without-fastcgi")
    assert rc == 0, out
    assert not [s for s in srcs if "ed_http_fastcgi" in s], srcs
    assert "ed_http_fastcgi_module" not in table
    # The layer cgi shares is core: its variables stay; so does cgi.
    assert "&ed_http_cgi_vars_module," in table
    assert "&ed_http_cgi_module," in table
