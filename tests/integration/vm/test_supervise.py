"""harness.vm.supervise with a fake vng (tests/fakes/fake-vng): real processes, no VM."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.errors import BootError
from harness.vm import supervise
from harness.vm.supervise import BootResult, Timeouts

FAKE_VNG = Path(__file__).resolve().parents[2] / "fakes" / "fake-vng"
NEVER_HANGS = 15.0   # seconds: a generous bound that only proves supervise returns


@pytest.fixture(autouse=True)
def _short_graces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "KILL_GRACE", 1.0)
    monkeypatch.setattr(supervise, "PANIC_GRACE", 1.0)


def live_members(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are not zombies."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()   # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            pids.append(int(d.name))
    return pids


def group_gone(pgid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while live_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def fake_boot(tmp_path: Path, *args: str, timeouts: Timeouts) -> tuple[BootResult, str]:
    start = time.monotonic()
    result = supervise.supervise([str(FAKE_VNG), *args], tmp_path / "console.log",
                            tmp_path / "stdout.log", timeouts, cwd=tmp_path)
    assert time.monotonic() - start < NEVER_HANGS
    pgid = int((tmp_path / "fake-vng.pid").read_text())
    assert group_gone(pgid), f"process group {pgid} outlived supervise: {live_members(pgid)}"
    return result, (tmp_path / "console.log").read_text()


def test_clean_exit(tmp_path: Path) -> None:
    r, console = fake_boot(tmp_path, "exit0", timeouts=Timeouts(boot=10, scenario=10, run=10))
    assert r.returncode == 0
    assert r.timed_out == ""
    assert r.killed is False
    assert r.booted_at is not None and 0 <= r.booted_at <= r.duration
    assert "mnh: scenario x end pass" in console
    assert (tmp_path / "stdout.log").read_text() == "guest stdout\n"


def test_exit_status_is_kept(tmp_path: Path) -> None:
    r, _ = fake_boot(tmp_path, "exit3", timeouts=Timeouts(boot=10, scenario=10, run=10))
    assert (r.returncode, r.timed_out, r.killed) == (3, "", False)


def test_hung_scenario_hits_the_scenario_watchdog(tmp_path: Path) -> None:
    r, _ = fake_boot(tmp_path, "hang-scenario", "mount",
                     timeouts=Timeouts(boot=30, scenario=1, run=60))
    assert r.timed_out == "scenario:mount"
    assert r.killed is True
    assert r.returncode == -15           # SIGTERM was enough
    assert r.booted_at is not None
    assert r.notes and "scenario:mount deadline passed" in r.notes[0]


def test_no_runner_start_is_a_boot_timeout(tmp_path: Path) -> None:
    r, console = fake_boot(tmp_path, "no-boot", timeouts=Timeouts(boot=1, scenario=30, run=60))
    assert r.timed_out == "boot"
    assert r.killed is True
    assert r.booted_at is None
    assert "Linux version" in console


def test_run_timeout_wins_over_the_others(tmp_path: Path) -> None:
    r, _ = fake_boot(tmp_path, "hang-scenario", timeouts=Timeouts(boot=30, scenario=30, run=1))
    assert r.timed_out == "run"


def test_sigterm_ignored_then_sigkill(tmp_path: Path) -> None:
    r, _ = fake_boot(tmp_path, "ignore-term", timeouts=Timeouts(boot=30, scenario=1, run=60))
    assert r.timed_out == "scenario:x"
    assert r.killed is True
    assert r.returncode == -9            # only SIGKILL ended it


def test_leftover_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    # The leader dies on SIGTERM but a child of its group ignores it: the whole group
    # must still be gone when supervise returns (checked in supervise() above).
    r, _ = fake_boot(tmp_path, "orphan", timeouts=Timeouts(boot=30, scenario=1, run=60))
    assert r.timed_out == "scenario:x"
    assert r.returncode == -15


def test_panic_that_does_not_end_the_guest(tmp_path: Path) -> None:
    r, console = fake_boot(tmp_path, "panic", timeouts=Timeouts(boot=30, scenario=30, run=60))
    assert r.timed_out == "panic"
    assert r.killed is True
    assert "Kernel panic - not syncing" in console


def test_missing_program_is_a_boot_error(tmp_path: Path) -> None:
    with pytest.raises(BootError, match="doctor --install"):
        supervise.supervise([str(tmp_path / "no-such-vng")], tmp_path / "c", tmp_path / "o",
                       Timeouts())


def test_guest_that_never_powers_off_is_stopped(tmp_path: Path) -> None:
    r, _ = fake_boot(tmp_path, "hang-at-poweroff",
                     timeouts=Timeouts(boot=10, scenario=10, run=60, shutdown=1))
    assert r.timed_out == "shutdown" and r.killed
    assert "did not power off" in r.notes[0]
