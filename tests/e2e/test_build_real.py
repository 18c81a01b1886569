"""The build stage on the real 6.12 kernel (opt-in: ``pytest -m build``; slow when cold).

The tests share the harness cache (sources, work trees, ccache, artifacts), so after the
first run they cost seconds: the cached artifact is found, the bad-config test stops after
allnoconfig, and the compile-error test compiles from ccache up to the broken file.
"""

from __future__ import annotations

import difflib
import subprocess
import time
from pathlib import Path

import pytest

from harness import paths
from harness.build import kconfig, make, pipeline, source
from harness.build.pipeline import BuildRequest
from harness.errors import BuildError, ConfigError

pytestmark = pytest.mark.build

SERIES = "mount-notify-v5"


def default_request() -> BuildRequest:
    """base + mount-notify with the series once it is in patches/, base alone before."""
    if (paths.data_dir("patches") / SERIES).is_dir():
        return BuildRequest(series=SERIES, configs=kconfig.DEFAULT_FRAGMENTS)
    return BuildRequest(configs=("base",))


def test_build_then_cached() -> None:
    req = default_request()
    art = pipeline.build(req)
    assert art.bzimage.stat().st_size > 1_000_000
    header = art.bzimage.read_bytes()[0x202:0x206]
    assert header == b"HdrS", "bzImage lacks the x86 boot protocol header"
    symbols = subprocess.run(["nm", art.vmlinux], check=True, capture_output=True,
                             text=True).stdout
    assert " T start_kernel" in symbols
    config = kconfig.parse_config(art.config.read_text())
    for symbol, value in kconfig.merge([kconfig.load_fragment(c) for c in req.configs]).items():
        assert config.get(symbol, "n") == value, symbol
    assert config.get("MODULES", "n") == "n"
    meta = art.metadata
    assert meta["reproducer"].startswith("harness build")
    assert meta["base"].startswith("debian:linux-source-6.12=")
    assert "duration_s" in meta and "ccache_hit_rate" in meta

    started = time.monotonic()
    again = pipeline.build(req)
    assert time.monotonic() - started < 5
    assert again.directory == art.directory


def test_dropped_option_names_dependency(tmp_path: Path) -> None:
    # NFS_V4 depends on NFS_FS, which base.config leaves off: Kconfig drops it silently.
    bad = tmp_path / "nfs4-without-nfs.config"
    bad.write_text("CONFIG_NFS_V4=y\n")
    base = str(kconfig.fragment_path("base"))
    with pytest.raises(ConfigError) as info:
        pipeline.build(BuildRequest(configs=(base, str(bad))))
    message = str(info.value)
    assert "CONFIG_NFS_V4 (wanted =y, got not set): unmet dependency NFS_FS [NFS_FS=n]" in message
    assert "fs/nfs/Kconfig" in message


# init/ is the first directory kbuild descends into, so a build of this series stops after
# the host tools and a few objects, cold or warm.
BROKEN = "init/main.c"


def syntax_error_series(directory: Path) -> tuple[Path, int]:
    """A format-patch series whose one patch breaks BROKEN; and the broken line."""
    base = source.debian_base()
    original = subprocess.run(["git", "-C", base.repo, "show", f"{base.commit}:{BROKEN}"],
                              check=True, capture_output=True, text=True).stdout
    lines = original.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("#include"))
    broken = [*lines[:at], "int harness_syntax_error = ;\n", *lines[at:]]
    diff = "".join(difflib.unified_diff(lines, broken, f"a/{BROKEN}", f"b/{BROKEN}"))
    directory.mkdir()
    (directory / "0001-init-break-main.c.patch").write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Harness Test <harness@invalid>\nDate: Sat, 1 Nov 2025 00:00:00 +0000\n"
        "Subject: [PATCH] init: break main.c\n\n---\n"
        f"diff --git a/{BROKEN} b/{BROKEN}\n" + diff + "--\n2.39.5\n")
    return directory, at + 1


def test_compile_error_names_file_and_line(tmp_path: Path) -> None:
    series, line = syntax_error_series(tmp_path / "syntax-error")
    with pytest.raises(BuildError) as info:
        pipeline.build(BuildRequest(series=str(series), configs=("base",)))
    err = info.value
    assert f"\n  {BROKEN}:{line}:" in str(err) and "error: expected expression" in str(err)
    assert err.artifacts is not None
    assert "error: expected expression" in (err.artifacts / "build.log").read_text()


@pytest.mark.parametrize("extra", [("debug",), ("nfs",), ("debug", "nfs")])
def test_optional_fragments_configure_cleanly(extra: tuple[str, ...], tmp_path: Path) -> None:
    """Every option of base + debug/nfs lands in the .config (configure only, no compile)."""
    base = source.debian_base()
    srctree = source.worktree(base, pipeline.NO_SERIES)
    names = ("base", *extra)
    requested = kconfig.merge([kconfig.load_fragment(n) for n in names])
    prefix = make.make_prefix(make.MakeSettings(srctree, tmp_path / "obj", jobs=2,
                                                ccache=False))
    dotconfig = kconfig.configure(prefix, tmp_path / "obj", srctree, requested, names)
    assert kconfig.check(requested, kconfig.parse_config(dotconfig.read_text())) == []
