"""Shared by every test: isolation from the user's HOME and cache, the end-to-end opt-in,
a quiet git, and a committed copy of tests/fakelinux.

Layout: ``unit/`` mirrors the package (pure functions, small real inputs),
``integration/`` runs real subprocesses against fakes (fakelinux, fake vng, QEMU and
guest), ``e2e/`` builds and boots real kernels. Plain ``pytest`` runs the first two;
the end-to-end tests (markers ``vm`` and ``build``) run with ``--e2e`` (what ``nox -s
tests`` passes) or when a ``-m`` expression selects them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.build.proc import GIT_IDENTITY

FAKELINUX = Path(__file__).parent / "fakelinux"
E2E_MARKERS = ("vm", "build")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--e2e", action="store_true", default=False,
                     help="also run the end-to-end tests (markers vm, build): real kernel "
                     "builds and QEMU boots; `nox -s tests` passes it")


def _is_e2e(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(m) is not None for m in E2E_MARKERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--e2e") or config.option.markexpr:
        return
    e2e = [i for i in items if _is_e2e(i)]
    if e2e:
        config.hook.pytest_deselected(items=e2e)
        items[:] = [i for i in items if not _is_e2e(i)]


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh HOME, XDG directories and harness cache for every test that does not build
    or boot a real kernel: nothing reads the user's configuration or writes into the
    real cache. End-to-end tests keep the real cache, whose content-hashed kernel builds,
    Debian kernels and images are what make a second run fast."""
    if _is_e2e(request.node):
        return
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("MNH_CACHE_DIR", str(home / ".cache" / "mount-notify-harness"))


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
