"""The compile step's pure parts: command lines, ccache statistics, errors, progress."""

from __future__ import annotations

import io
from pathlib import Path

from harness.build import make
from harness.build.make import MakeSettings

S = MakeSettings(srctree=Path("/src"), objdir=Path("/obj"), jobs=2)


def test_make_command_is_a_list_with_nice_ccache_and_o() -> None:
    assert make.make_command(S) == [
        "nice", "-n", "10", "make", "-C", "/src", "O=/obj", "-j2", "CC=ccache gcc",
        "KBUILD_BUILD_USER=harness", "KBUILD_BUILD_HOST=harness",
        f"KBUILD_BUILD_TIMESTAMP={make.BUILD_TIMESTAMP}", "KBUILD_BUILD_VERSION=1", "bzImage"]


def test_make_command_without_ccache_or_nice() -> None:
    s = MakeSettings(srctree=Path("/src"), objdir=Path("/obj"), jobs=8, ccache=False, nice=0)
    cmd = make.make_command(s, ["vmlinux"])
    assert cmd[:4] == ["make", "-C", "/src", "O=/obj"] and cmd[-1] == "vmlinux"
    assert not any(a.startswith("CC=") for a in cmd)


def test_make_env() -> None:
    env = make.make_env(Path("/cache/ccache"))
    assert env["CCACHE_DIR"] == "/cache/ccache" and env["GCC_COLORS"] == ""
    assert "CCACHE_DIR" not in make.make_env(None)


STATSLOG = """\
# ../../src/fs/a.c
cache_miss
direct_cache_miss
# ../../src/fs/b.c
direct_cache_hit
local_storage_hit
# ../../src/fs/c.c
direct_cache_miss
preprocessed_cache_hit
# ../../src/fs/d.c
direct_cache_hit
"""


def test_ccache_hit_rate_from_statslog() -> None:
    assert make.hit_rate(STATSLOG) == 0.75
    assert make.hit_rate("") is None


def test_make_env_statslog() -> None:
    env = make.make_env(Path("/c"), Path("/s.log"))
    assert env["CCACHE_STATSLOG"] == "/s.log" and env["CCACHE_BASEDIR"]
    assert "CCACHE_STATSLOG" not in make.make_env(None, Path("/s.log"))


LOG = """\
  CC      fs/namespace.o
\x1b[01m\x1b[Kfs/namespace.c:\x1b[m\x1b[K In function 'do_mount':
\x1b[01m\x1b[K/w/src/fs/namespace.c:4012:9:\x1b[m\x1b[K \
\x1b[01;31m\x1b[Kerror: \x1b[m\x1b[Kexpected ';'
fs/pnode.c:12: error: unknown type name 'foo'
make[3]: *** [scripts/Makefile.build:229: fs/namespace.o] Error 1
"""


def test_first_errors_strips_colour_and_keeps_file_line() -> None:
    assert make.first_errors(LOG) == [
        "/w/src/fs/namespace.c:4012:9: error: expected ';'",
        "fs/pnode.c:12: error: unknown type name 'foo'"]


def test_first_errors_falls_back_to_linker_and_make() -> None:
    log = "  LD      vmlinux\nld: fs/a.o: undefined reference to `b'\nmake: *** [x] Error 2\n"
    assert make.first_errors(log) == ["ld: fs/a.o: undefined reference to `b'",
                                      "make: *** [x] Error 2"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_is_a_line_per_interval() -> None:
    out = io.StringIO()
    p = make.Progress(out, interval=0.0)     # every update is due
    p.line("  CC      fs/namespace.o")
    p.line("fs/namespace.c: warning")        # not a kbuild step: not counted, not shown
    p.close()
    assert p.count == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "building the kernel: [    1] CC fs/namespace.o" in lines[0]
    assert "\r" not in out.getvalue()


def test_progress_in_a_log_waits_for_the_interval() -> None:
    out = io.StringIO()
    p = make.Progress(out)                   # 30 s: nothing is due in this test
    for _ in range(100):
        p.line("  CC      fs/namespace.o")
    p.close()
    assert p.count == 100 and out.getvalue() == ""


def test_progress_on_tty() -> None:
    out = Tty()
    p = make.Progress(out)
    p.line("  CC      fs/namespace.o")
    p.line("  LD      vmlinux")
    p.close()
    text = out.getvalue()
    # The first step shows at once; the second came within the 0.1 s of a live line.
    assert "[    1] CC fs/namespace.o" in text and p.count == 2
    assert text.startswith("\r") and text.endswith("\r\x1b[K") and "\n" not in text


def test_tree_relative(tmp_path: Path) -> None:
    src, obj = tmp_path / "s" / "src", tmp_path / "s" / "obj" / "cfg"
    line = "../../src/fs/namespace.c:11:28: error: expected expression"
    assert make.tree_relative(line, obj, src) == "fs/namespace.c:11:28: error: expected expression"
    assert make.tree_relative("ld: x: undefined reference", obj, src) == \
        "ld: x: undefined reference"
    assert make.tree_relative(f"{src}/fs/a.c:1: error: x", obj, src) == "fs/a.c:1: error: x"
