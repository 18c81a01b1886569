"""Shared by the host-side tests: a quiet git, and a committed copy of tests/fakelinux."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.build.proc import GIT_IDENTITY

FAKELINUX = Path(__file__).parent / "fakelinux"


def git(repo: Path, *args: str) -> str:
    """git in ``repo`` with a fixed identity and no user configuration."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo), **GIT_IDENTITY}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, text=True,
                          capture_output=True, env=env).stdout


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed copy of the fake kernel tree (branch main), and an empty harness cache."""
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FAKELINUX_FAIL", raising=False)
    t = tmp_path / "linux"
    shutil.copytree(FAKELINUX, t, ignore=shutil.ignore_patterns("__pycache__"))
    git(t, "init", "-q", "-b", "main")
    git(t, "add", "-A")
    git(t, "commit", "-q", "-m", "fake linux")
    return t
