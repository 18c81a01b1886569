"""End to end: the harness's own failure paths on a real guest.

A panic is a crash with the excerpt, a scenario that never ends is a timeout
(guest-side, and host watchdog when the guest cannot help), a wrong expectation is
a fail, a kernel that panics at boot is a crash, a guest that never answers is a
timeout, and a bad kernel path is a clear error. Each in bounded time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import KernelFetchError
from harness.results.verdict import Outcome
from harness.testing.plugin import GuestRun
from harness.vm.supervise import Timeouts
from harness.workflows.run import RunOptions, RunResult, exit_code, run

pytestmark = pytest.mark.vm


def test_panic_is_a_crash_with_excerpt(guest_run: GuestRun, mnh_kernel: str) -> None:
    r = guest_run(mnh_kernel, ("mount", "selftest-panic", "move"), tag="panic",
                  timeouts=Timeouts(boot=240, scenario=60, run=400))
    assert r.boot.duration < 400
    assert r.scenario("mount").outcome is Outcome.PASS
    crash = r.scenario("selftest-panic")
    assert crash.outcome is Outcome.CRASH, crash.message
    assert crash.splats and crash.splats[0]["kind"] == "panic"
    assert "sysrq triggered crash" in crash.splats[0]["excerpt"]
    after = r.scenario("move")
    assert after.outcome is Outcome.ERROR and "selftest-panic" in after.message
    assert exit_code(r.scenarios) == 1
    data = json.loads((r.results_dir / "results.json").read_text())
    assert data["summary"]["crash"] == 1


# One boot proves the fail path, the guest-side timeout, and that the runner goes on.
FAIL_AND_HANG = ("selftest-fail", "selftest-hang", "move")


def _fail_and_hang(guest_run: GuestRun, kernel: str) -> RunResult:
    return guest_run(kernel, FAIL_AND_HANG, guest_timeout=5, tag="fail-and-hang",
                     timeouts=Timeouts(boot=240, scenario=60, run=400))


def test_guest_side_timeout(guest_run: GuestRun, mnh_kernel: str) -> None:
    r = _fail_and_hang(guest_run, mnh_kernel)
    hang = r.scenario("selftest-hang")
    assert hang.outcome is Outcome.TIMEOUT, hang.message
    assert "guest runner killed it" in hang.message
    assert r.scenario("move").outcome is Outcome.PASS  # the runner went on


def test_host_watchdog_timeout(guest_run: GuestRun, mnh_kernel: str) -> None:
    r = guest_run(mnh_kernel, ("selftest-hang", "move"), guest_timeout=0, tag="hang-host",
                  timeouts=Timeouts(boot=240, scenario=10, run=400))
    hang = r.scenario("selftest-hang")
    assert hang.outcome is Outcome.TIMEOUT, hang.message
    assert "host watchdog" in hang.message
    assert r.boot.killed and r.boot.timed_out == "scenario:selftest-hang"
    assert r.scenario("move").outcome is Outcome.ERROR


def test_fail_path(guest_run: GuestRun, mnh_kernel: str) -> None:
    r = _fail_and_hang(guest_run, mnh_kernel)
    res = r.scenario("selftest-fail")
    assert res.outcome is Outcome.FAIL
    assert "deliberately failing" in res.message


def test_boot_panic_is_a_crash(guest_run: GuestRun, mnh_kernel: str) -> None:
    # No initramfs init: the kernel panics looking for a root file system.
    r = guest_run(mnh_kernel, ("mount",), append=("rdinit=/nonexistent",), tag="boot-panic",
                  timeouts=Timeouts(boot=240, scenario=60, run=400))
    res = r.scenario("mount")
    assert res.outcome is Outcome.CRASH, res.message
    assert "before the runner started" in res.message
    assert "Unable to mount root fs" in res.splats[0]["excerpt"]


def test_guest_that_never_answers_times_out(guest_run: GuestRun, mnh_kernel: str) -> None:
    r = guest_run(mnh_kernel, ("mount",), tag="boot-timeout",
                  timeouts=Timeouts(boot=3, scenario=60, run=400))
    res = r.scenario("mount")
    assert res.outcome is Outcome.TIMEOUT, res.message
    assert r.boot.timed_out == "boot" and r.boot.duration < 30
    assert (r.results_dir / "console.log").exists()


def test_nonexistent_kernel_path(tmp_path: Path) -> None:
    with pytest.raises(KernelFetchError, match="does not exist"):
        run(RunOptions(kernel=str(tmp_path / "no-such-bzImage"), results=tmp_path / "r"))
