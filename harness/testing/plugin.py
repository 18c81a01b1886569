"""The pytest plugin (entry point ``pytest11``): options, fixtures, and the report hook.

``guest_run`` boots a kernel once per distinct request in a test session and hands
back the ``RunResult``; tests then assert on the decoded logs with
``harness.asserts``. End-to-end tests never skip because a prerequisite is missing:
they fail and say what to install.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.testing.asserts import ScenarioLog
from harness.vm.supervise import Timeouts
from harness.workflows.run import RunOptions, RunResult, run

GuestRun = Callable[..., RunResult]


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("mount-notify-harness")
    g.addoption("--mnh-kernel", default=os.environ.get("MNH_KERNEL", "debian"),
                help="kernel for fanotify end-to-end tests (default: debian, the newest "
                     "prebuilt Debian kernel; env MNH_KERNEL)")
    g.addoption("--mnh-patched-kernel", default=os.environ.get("MNH_PATCHED_KERNEL", "build"),
                help="kernel for watch-queue end-to-end tests (default: build, the bundled "
                     "series built or taken from the cache; env MNH_PATCHED_KERNEL)")
    g.addoption("--mnh-results", default=os.environ.get("MNH_RESULTS"),
                help="keep end-to-end results under this directory (default: pytest's tmp)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "vm: boots a real kernel under QEMU (end-to-end)")


@pytest.fixture(scope="session")
def mnh_kernel(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--mnh-kernel"))


@pytest.fixture(scope="session")
def mnh_patched_kernel(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--mnh-patched-kernel"))


@pytest.fixture(scope="session")
def mnh_results_root(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = request.config.getoption("--mnh-results")
    if given:
        p = Path(str(given)).resolve()
        p.mkdir(parents=True, exist_ok=True)
        return p
    return tmp_path_factory.mktemp("mnh-results")


@pytest.fixture(scope="session")
def guest_run(mnh_results_root: Path) -> Iterator[GuestRun]:
    """``guest_run(kernel, scenarios, backend=..., **options)``, memoised per arguments."""
    cache: dict[tuple[object, ...], RunResult] = {}

    def _run(kernel: str, scenarios: tuple[str, ...] = (), backend: str = "fanotify",
             guest_timeout: float = 60.0, timeouts: Timeouts | None = None,
             append: tuple[str, ...] = (), tag: str = "") -> RunResult:
        key = (kernel, scenarios, backend, guest_timeout, timeouts, append)
        if key not in cache:
            name = tag or f"{backend}-{len(cache)}"
            cache[key] = run(RunOptions(kernel=kernel, backend=backend, scenarios=scenarios,
                                        results=mnh_results_root / name,
                                        guest_timeout=guest_timeout,
                                        timeouts=timeouts or Timeouts(), append=append))
        return cache[key]

    yield _run


@pytest.fixture(scope="session")
def fanotify_suite(guest_run: GuestRun, mnh_kernel: str) -> RunResult:
    """Every default fanotify scenario, in one boot of the prebuilt kernel."""
    return guest_run(mnh_kernel, backend="fanotify", tag="fanotify-suite")


@pytest.fixture(scope="session")
def watch_queue_suite(guest_run: GuestRun, mnh_patched_kernel: str) -> RunResult:
    """Every default watch-queue scenario, in one boot of the patched kernel."""
    return guest_run(mnh_patched_kernel, backend="watch-queue", tag="watch-queue-suite")


def scenario_log(result: RunResult, name: str) -> ScenarioLog:
    return ScenarioLog.load(result.log_path(name))
