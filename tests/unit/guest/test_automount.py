"""mnh_guest.scenarios.automount.bounded: a blocking step in a child, with a deadline."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from mnh_guest.scenarios.automount import bounded


def test_success_runs_the_step_in_a_child(tmp_path: Path) -> None:
    mark = tmp_path / "ran"

    def step() -> None:
        mark.write_text(str(os.getpid()))

    bounded(step, 5, "write")
    assert mark.exists(), "the step did not run"
    assert int(mark.read_text()) != os.getpid(), "the step ran in the caller, not a child"


def test_errno_comes_back() -> None:
    with pytest.raises(OSError) as info:
        bounded(lambda: os.stat("/nonexistent/mnh"), 5, "stat")
    assert info.value.errno == errno.ENOENT and "stat" in str(info.value)


def test_other_exception_is_reported() -> None:
    def boom() -> None:
        raise ValueError("x")

    with pytest.raises(OSError, match="an exception"):
        bounded(boom, 5, "boom")


def test_late_child_is_killed() -> None:
    with pytest.raises(TimeoutError, match="no answer within 1 s"):
        bounded(lambda: time.sleep(60), 1, "sleep")
