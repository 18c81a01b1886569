"""The source step: extracting a Debian source tarball once, and redoing a broken one."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from harness.build import source
from harness.errors import BuildError, PrerequisiteError


@pytest.fixture()
def tarball(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny linux-source-style tarball, a fake dpkg-query on PATH, an empty cache."""
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path / "cache"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dpkg-query"
    fake.write_text('#!/bin/sh\n[ "$3" = linux-source-9.9 ] || exit 1\nprintf "9.9.1-1~deb12u1"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    top = tmp_path / "linux-source-9.9"
    (top / "arch" / "x86").mkdir(parents=True)
    for name in ("Makefile", "Kconfig", "arch/x86/Kconfig"):
        (top / name).write_text(f"# {name}\n")
    (top / ".gitignore").write_text("/*\n")  # like Debian's: ignores the top level
    out = tmp_path / "linux-source-9.9.tar.xz"
    with tarfile.open(out, "w:xz") as tar:
        tar.add(top, arcname="linux-source-9.9")
    return out


def test_extract_once_and_commit(tarball: Path) -> None:
    base = source.debian_base("linux-source-9.9", tarball)
    assert base.identity == "debian:linux-source-9.9=9.9.1-1~deb12u1"
    assert base.key == "linux-source-9.9_9.9.1-1_deb12u1"
    assert (base.repo / "Makefile").is_file() and len(base.commit) == 40
    assert (base.repo.parent / ".complete").is_file()
    marker = (base.repo.parent / ".complete").stat().st_mtime_ns
    again = source.debian_base("linux-source-9.9", tarball)
    assert again == base
    assert (base.repo.parent / ".complete").stat().st_mtime_ns == marker, "extracted twice"


def test_interrupted_extraction_is_redone(tarball: Path) -> None:
    base = source.debian_base("linux-source-9.9", tarball)
    (base.repo.parent / ".complete").unlink()  # as if killed before the marker
    (base.repo / "Makefile").unlink()
    again = source.debian_base("linux-source-9.9", tarball)
    assert (again.repo / "Makefile").is_file()
    assert not list(again.repo.parent.parent.glob("*.partial"))


def test_worktree_is_separate_from_pristine(tarball: Path) -> None:
    base = source.debian_base("linux-source-9.9", tarball)
    tree = source.worktree(base, "series-a")
    assert tree.name == "src" and tree.parent.name == "series-a"
    (tree / "Makefile").write_text("changed\n")
    assert (base.repo / "Makefile").read_text() == "# Makefile\n"
    source.reset_worktree(tree, base.commit)
    assert (tree / "Makefile").read_text() == "# Makefile\n"
    assert source.worktree(base, "series-a") == tree


def test_missing_package_or_tarball(tarball: Path, tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match=r"apt-get install linux-source-1\.0"):
        source.debian_base("linux-source-1.0", tarball)
    with pytest.raises(PrerequisiteError, match=r"tarball .* is missing"):
        source.debian_base("linux-source-9.9", tmp_path / "nope.tar.xz")


def test_safe_key() -> None:
    assert source.safe_key("linux-source-6.12_6.12.117-1~deb12u1") == \
        "linux-source-6.12_6.12.117-1_deb12u1"
    assert source.safe_key("a b/c") == "a_b_c"


def test_lock_wait_has_a_deadline_and_names_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with source.locked(lock):
        assert "pid" in (tmp_path / "lock.holder").read_text()
        # flock locks belong to the open file description: a second open waits.
        with (pytest.raises(BuildError, match=r"pid \d+.*held .* for over 1 s"),
              source.locked(lock, timeout=1.0)):
            pass
    assert not (tmp_path / "lock.holder").exists()
    with source.locked(lock, timeout=1.0):   # free again
        pass
